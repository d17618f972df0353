"""Time in one place: aware datetimes, ISO 8601 with offset, the branch's business day."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from services.common.config import Branch


def now() -> datetime:
    return datetime.now(UTC)


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def local_iso(branch: Branch, moment: datetime | None = None) -> str:
    """Return the moment in the branch's time zone, ISO 8601 with its offset."""
    return iso((moment or now()).astimezone(branch.zone))


def from_ms(ms: int | float, branch: Branch) -> str:
    return local_iso(branch, datetime.fromtimestamp(ms / 1000, UTC))


def business_day(branch: Branch, moment: datetime | None = None) -> str:
    """Return the branch's local date (YYYY-MM-DD): ticket numbers restart each day."""
    return (moment or now()).astimezone(branch.zone).date().isoformat()


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)
