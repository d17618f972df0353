"""The trends as a document: heatmap cells, weekly rows, page kinds, pause reasons and days, the JSON the API
answers. The page and the CSV files show the same numbers.

Durations are seconds (`*_s`); shares are fractions from 0 to 1. Weeks are calendar weeks, Monday to Sunday,
named as ISO 8601 names them (2025-W10); the first and the last week of a range may lie partly outside it
(`days` says how many of its days it covers).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.pager.report.models import PERCENTILE_METHOD, PageKindRow


class CategoryTrend(BaseModel):
    category: str
    name: str
    name_en: str
    vip: bool
    issued: int = Field(description="tickets numbered in this category over the range")
    called: int = Field(description="tickets called: those with a waiting time")
    wait_p50_s: float | None = Field(description="waiting time, nearest-rank median (seconds)")
    wait_p90_s: float | None = Field(description="waiting time, nearest-rank 90th percentile (seconds)")


class HeatCell(BaseModel):
    """The waits of the tickets of one category issued on one weekday in one hour, over the range."""

    category: str
    weekday: int = Field(ge=0, le=6, description="0 Monday … 6 Sunday, local")
    hour: int = Field(ge=0, le=23, description="local hour of issue")
    tickets: int
    called: int
    wait_p50_s: float | None = Field(description="nearest-rank median of the called tickets' waits (seconds)")
    wait_p90_s: float | None = Field(description="nearest-rank 90th percentile (seconds)")


class WeekRow(BaseModel):
    """A calendar week of the range: tickets, VIP waits over the threshold, pages, escalations, pauses."""

    week: str = Field(examples=["2025-W10"], description="the ISO 8601 week")
    start: str = Field(description="its Monday")
    end: str = Field(description="its Sunday")
    days: int = Field(description="days of the week inside the range (7 but for the first and last week)")
    archived_days: int = Field(description="of those, the days the records database holds")
    tickets: int
    vip_called: int = Field(description="VIP tickets called: VIP waits")
    vip_over: int = Field(description="VIP waits longer than the branch's threshold")
    vip_over_share: float | None = Field(description="vip_over / vip_called, from 0 to 1 (4 decimals)")
    vip_not_called: int = Field(description="VIP tickets never called, counted apart: they have no waiting time")
    pages: int = Field(description="pages needing an acknowledgement (drills and information excluded)")
    acknowledged: int
    ack_p50_s: float | None = Field(description="time to acknowledge, nearest-rank median (seconds)")
    ack_p90_s: float | None = Field(description="time to acknowledge, nearest-rank 90th percentile (seconds)")
    escalated: int = Field(description="pages that reached a manager after the first (escalation_level > 0)")
    pauses: int
    pause_s: int = Field(description="seconds paused in all")
    pause_overruns: int = Field(description="pauses longer than expected (actual_s > expected_minutes × 60)")


class AckWeekRow(BaseModel):
    """Time to acknowledge the pages of one kind (or `all`) in one week."""

    week: str
    start: str
    kind: str = Field(description="a page kind, or `all`")
    name: str
    name_en: str
    pages: int = Field(description="pages needing an acknowledgement")
    acknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    escalated: int


class PauseReasonRow(BaseModel):
    """The pauses of one reason over the range: how long in all, and how many ran over the time expected."""

    reason: str
    name: str
    name_en: str
    pauses: int
    actual_s: int = Field(description="seconds paused in all")
    expected_s: int = Field(description="seconds expected in all (expected_minutes × 60)")
    actual_minutes: float = Field(description="actual_s / 60, to 0.1 minute")
    overruns: int = Field(description="pauses longer than expected")
    over_s: int = Field(description="seconds past the time expected, summed over the pauses that overran")


class DayRow(BaseModel):
    day: str
    weekday: int = Field(ge=0, le=6)
    archived: bool = Field(description="the records database holds the day; a day it does not hold counts nothing")
    counts: dict[str, int] = Field(description="tickets issued per category")
    total: int


class TrendsSummary(BaseModel):
    tickets: int
    tickets_per_day: float | None = Field(description="tickets / archived days, to 0.1")
    called: int
    wait_p50_s: float | None
    wait_p90_s: float | None
    vip_called: int
    vip_over: int
    vip_over_share: float | None
    vip_not_called: int
    pages: int = Field(description="pages needing an acknowledgement (drills and information excluded)")
    acknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    escalated: int
    pauses: int
    pause_s: int
    pause_overruns: int


class Trends(BaseModel):
    branch: str
    branch_name: str
    branch_name_en: str
    timezone: str
    generated_at: str
    range: str = Field(description="4w (28 days), quarter (13 weeks: 91 days) or 12m (365 days)")
    start: str = Field(description="the first business day of the range")
    end: str = Field(description="the last: the day before today, in the branch's time zone")
    days: int
    archived_days: int = Field(description="days of the range the records database holds: only they count")
    percentile_method: str = Field(default=PERCENTILE_METHOD,
                                   description="nearest-rank: the ⌈p·n/100⌉-th smallest value")
    vip_wait_threshold_minutes: float
    summary: TrendsSummary
    categories: list[CategoryTrend]
    weekdays: list[int] = Field(description="the weekdays the heatmap shows: those with a ticket in the range")
    hours: list[int] = Field(description="the hours the heatmap shows: from the first with a ticket to the last")
    heatmap: list[HeatCell] = Field(description="every category × weekday × hour, in that order")
    weeks: list[WeekRow]
    ack_weeks: list[AckWeekRow] = Field(description="per week, every kind with a page to acknowledge, then `all`")
    kinds: list[PageKindRow] = Field(description="pages per kind over the range, as the daily report counts them")
    kinds_all: PageKindRow
    pauses: list[PauseReasonRow] = Field(description="every pause reason of the branch, then any other found")
    daily: list[DayRow] = Field(description="every day of the range, archived or not")


class TrendsEnvelope(BaseModel):
    trends: Trends
