"""Time in one place: the clock the domain reads, aware datetimes, ISO 8601 with offset, the business day.

The domain never reads the wall clock itself: what happens at a moment takes a `Clock` (the services pass
`SYSTEM`; a test or a simulated day passes its own), and the helpers below take the moment they format.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from services.domain.branch import Branch


class Clock:
    """The wall clock. A test or a simulation gives the domain another Clock, with the same two methods."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def now_ms(self) -> int:
        return int(time.time() * 1000)


SYSTEM = Clock()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def local_iso(branch: Branch, moment: datetime) -> str:
    """Return the moment in the branch's time zone, ISO 8601 with its offset."""
    return iso(moment.astimezone(branch.zone))


def from_ms(ms: int | float, branch: Branch) -> str:
    return local_iso(branch, datetime.fromtimestamp(ms / 1000, UTC))


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def business_day(branch: Branch, moment: datetime) -> str:
    """Return the branch's local date (YYYY-MM-DD) at the moment: ticket numbers restart each day."""
    return moment.astimezone(branch.zone).date().isoformat()


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)
