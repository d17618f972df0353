"""The report as a document: its rows, its summary and its envelope, the JSON the API answers.

The page and the CSV files show the same numbers. Durations are seconds (`*_s`); a pause's expected time is
the whole minutes the teller chose, and its minutes to 0.1 are kept beside the seconds for scripts that read
them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

PERCENTILE_METHOD = "nearest-rank"


class CategoryRow(BaseModel):
    category: str
    name: str
    name_en: str
    vip: bool
    issued: int = Field(description="tickets numbered in this category that day")
    called: int = Field(description="tickets called (called, served or no-show): those with a waiting time")
    served: int
    no_show: int
    waiting: int = Field(description="never called and still waiting")
    expired: int = Field(description="never called; closed at the day's end")
    wait_p50_s: float | None = Field(description="waiting time, nearest-rank median (seconds)")
    wait_p90_s: float | None = Field(description="waiting time, nearest-rank 90th percentile (seconds)")
    wait_max_s: float | None


class HourRow(BaseModel):
    hour: int = Field(ge=0, le=23, description="local hour the tickets were issued in")
    label: str = Field(examples=["09:00–10:00"])
    counts: dict[str, int] = Field(description="tickets issued per category")
    total: int


class VipWaitRow(BaseModel):
    number: str
    category: str
    name: str
    name_en: str
    status: str = Field(description="the ticket's status: called, served, no_show, waiting or expired")
    issued_at: str
    called_at: str | None
    window: str | None
    waited_s: float | None = Field(description="called_at − issued_at; so far, while waiting; null if expired")
    over_s: float | None = Field(description="waited_s − the threshold")
    still_waiting: bool


class PauseRow(BaseModel):
    counter: str
    window: str
    reason: str
    reason_name: str
    reason_name_en: str
    note: str | None
    since: str
    resumed_at: str | None = Field(description="null while the pause still runs")
    expected_minutes: int
    actual_s: int
    actual_minutes: float = Field(description="actual_s / 60, to 0.1 minute")
    over_minutes: float = Field(description="actual minus expected, to 0.1 minute (negative: ended early)")
    over_s: int = Field(description="actual_s − expected, in seconds (negative: ended early, or time left while "
                                    "running)")
    overran: bool
    running: bool


class PageKindRow(BaseModel):
    kind: str = Field(description="a page kind, or `all`")
    name: str
    name_en: str
    pages: int
    information: int = Field(description="low-priority pages, for information: no acknowledgement needed")
    acknowledged: int = Field(description="pages needing an acknowledgement that got one")
    cleared: int = Field(description="pages needing an acknowledgement that the system closed before anyone "
                                     "acknowledged them, because their condition ended")
    unacknowledged: int = Field(description="pages needing an acknowledgement that got none and were not cleared")
    ack_p50_s: float | None = Field(description="time to acknowledge, nearest-rank median (seconds)")
    ack_p90_s: float | None = Field(description="time to acknowledge, nearest-rank 90th percentile (seconds)")
    ack_max_s: float | None
    escalated: int = Field(description="pages that reached a manager after the first (escalation_level > 0)")


class SupervisionRow(BaseModel):
    """An incident the system found by itself: a screen or terminal offline, a long service, a long line."""

    kind: str = Field(description="endpoint_offline, long_service or queue_long")
    name: str
    name_en: str
    subject: str = Field(description="what it was about: an endpoint (display:lobby), a counter and its ticket "
                                     "(1 A012), or a category (vip)")
    subject_name: str
    since: str = Field(description="offline since; the call of the ticket; when the line passed the limit")
    ended_at: str | None = Field(description="when its page ended (cleared by the system when the condition "
                                             "ended); null while it runs")
    lasted_s: int = Field(description="since → ended_at, or → now while it runs")
    running: bool
    acknowledged_by: str | None


class TestCallRow(BaseModel):
    """A drill of the silent call: pressed as a test, and taken like any page."""

    window: str
    created_at: str
    acknowledged_by: str | None
    ack_s: float | None = Field(description="seconds from the press's page to its acknowledgement")
    escalated: bool
    paged: list[str] = Field(description="managers paged, in escalation order")


class Summary(BaseModel):
    issued: int
    called: int
    served: int
    no_show: int
    not_called: int = Field(description="still waiting or expired")
    wait_p50_s: float | None
    wait_p90_s: float | None
    wait_max_s: float | None
    vip_over_threshold: int
    pauses: int
    pause_minutes: float
    pause_s: int = Field(description="seconds paused in all")
    pause_overruns: int
    pages: int
    pages_escalated: int
    pages_cleared: int
    pages_unacknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    supervision_incidents: int = Field(description="screens or terminals offline, long services, long lines")
    test_calls: int = Field(description="drills of the silent call, not counted in pages")
    test_calls_acknowledged: int


class Report(BaseModel):
    branch: str
    branch_name: str
    branch_name_en: str
    date: str = Field(examples=["2025-03-14"], description="the business day, in the branch's time zone")
    timezone: str
    generated_at: str
    percentile_method: str = Field(default=PERCENTILE_METHOD,
                                   description="nearest-rank: the ⌈p·n/100⌉-th smallest value")
    vip_wait_threshold_minutes: float
    history_expired: bool = Field(description="the day is older than the branch keeps history (history_days): "
                                              "its tickets, pauses and pages have been removed")
    summary: Summary
    categories: list[CategoryRow]
    hours: list[HourRow]
    vip_waits: list[VipWaitRow]
    pauses: list[PauseRow]
    pages: list[PageKindRow]
    pages_all: PageKindRow
    supervision: list[SupervisionRow]
    test_calls: list[TestCallRow]


class ReportEnvelope(BaseModel):
    report: Report
