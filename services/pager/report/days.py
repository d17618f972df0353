"""The business day a report is of: the date asked for, its first and last millisecond, and times within it.

A day is a calendar date in the branch's time zone, as YYYY-MM-DD, between FIRST_DAY and LAST_DAY.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from services.domain.branch import Branch
from services.domain.clock import parse_iso
from services.domain.errors import Unprocessable

DAY_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def parse_day(value: str | None, branch: Branch, today: str) -> str:
    """Return the business day asked for (YYYY-MM-DD; today when empty), or raise 422."""
    if value is None or value == "":
        return today
    if not DAY_PATTERN.match(value):
        raise Unprocessable(f"date must be a day as YYYY-MM-DD, e.g. {today}; got {value!r}", code="invalid_date")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise Unprocessable(f"{value} is not a calendar date", code="invalid_date") from exc
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Unprocessable(f"date must be between {FIRST_DAY} and {LAST_DAY}", code="invalid_date")
    return day.isoformat()


def day_bounds_ms(branch: Branch, day: str) -> tuple[int, int]:
    """Return the first and the last millisecond of a local day in the branch's time zone."""
    start = datetime.combine(date.fromisoformat(day), time(0), branch.zone)
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(0), branch.zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1


def local_day(branch: Branch, iso: str) -> str:
    """Return the branch's local date of an ISO time, as YYYY-MM-DD."""
    return parse_iso(iso).astimezone(branch.zone).date().isoformat()


def seconds_between(start: str, end: str) -> float:
    """Return the seconds from one ISO time to another, to the millisecond."""
    return round((parse_iso(end) - parse_iso(start)).total_seconds(), 3)
