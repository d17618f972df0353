"""The ranges the trends cover: the last 28 days, 13 weeks or 365 days, ending yesterday (today is not closed, so
never archived), and the calendar weeks (Monday to Sunday) they fall in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from services.domain.errors import Unprocessable

# Each range a manager may ask for (?range=), in the order the page offers them, with the days it covers.
RANGES = {"4w": 28, "quarter": 91, "12m": 365}
DEFAULT_RANGE = "4w"
RANGE_NAMES = {"4w": ("4 周", "4 weeks"), "quarter": ("季度", "Quarter"), "12m": ("12 个月", "12 months")}


@dataclass(frozen=True)
class Span:
    """A range of business days: its key, its first and last day (both included)."""

    key: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def mondays(self) -> list[date]:
        """Return the Monday of every calendar week the range touches, the first and last maybe in part."""
        first = self.start - timedelta(days=self.start.weekday())
        return [first + timedelta(weeks=n) for n in range((self.end - first).days // 7 + 1)]


def parse_range(value: str | None) -> str:
    """Return the range asked for (4w when none), or raise 422 `invalid_range`."""
    if value is None or value == "":
        return DEFAULT_RANGE
    if value not in RANGES:
        raise Unprocessable(f"range must be one of {', '.join(RANGES)} (28 days, 13 weeks or 365 days); got "
                            f"{value[:32]!r}", code="invalid_range")
    return value


def span_of(key: str, today: str) -> Span:
    """Return the range ending the day before the branch's business day `today` (YYYY-MM-DD)."""
    end = date.fromisoformat(today) - timedelta(days=1)
    return Span(key=key, start=end - timedelta(days=RANGES[key] - 1), end=end)


def week_of(day: date) -> date:
    """Return the Monday of a day's calendar week."""
    return day - timedelta(days=day.weekday())


def week_name(monday: date) -> str:
    """Name a calendar week as ISO 8601 does, e.g. 2025-W10."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"
