"""Public resource models (API.md): the shapes clients read, and the OpenAPI document shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Redirect(BaseModel):
    window: str
    reason: Literal["vip_counter_paused", "counter_closed"] = "vip_counter_paused"


class Ticket(BaseModel):
    number: str = Field(examples=["V007"])
    category: str
    status: Literal["waiting", "called", "served", "no_show", "expired"] = Field(
        description="expired: still waiting when its business day ended")
    position: int | None = Field(description="1 = next; null once called")
    estimated_wait_s: int | None
    issued_at: str
    called_at: str | None = None
    window: str | None = Field(default=None, description="where to go, once called (or, for a ticket "
                                                         "transferred to one counter, where it will be called)")
    redirect: Redirect | None = None
    recalls: int = Field(default=0, description="times it was called again")
    transfers: int = Field(default=0, description="times it was transferred to another category or counter")


class TicketEnvelope(BaseModel):
    ticket: Ticket | None


class Pause(BaseModel):
    reason: str
    note: str | None = None
    expected_minutes: int
    since: str
    until: str


class Counter(BaseModel):
    id: str
    window: str
    status: Literal["open", "paused", "closed"]
    serving: Ticket | None = None
    pause: Pause | None = None
    serves: list[str] = Field(default_factory=list, description="categories called here, in order")
    weights: dict[str, int] = Field(default_factory=dict, description="calls per round from each category")
    waiting: dict[str, int] = Field(default_factory=dict, description="who waits for this counter, per "
                                                                      "category called here, and `transfers`")


class CounterEnvelope(BaseModel):
    counter: Counter


class NowServing(BaseModel):
    number: str
    window: str
    called_at: str


class Waiting(BaseModel):
    count: int
    estimated_wait_s: int | None


class Notice(BaseModel):
    kind: Literal["vip_redirect"]
    window: str
    category: str
    tickets: list[str]
    reason: Literal["vip_counter_paused", "counter_closed"] = Field(
        default="vip_counter_paused", description="why: the counter paused (rule 1) or closed")


class Screen(BaseModel):
    branch: str
    now_serving: list[NowServing]
    waiting: dict[str, Waiting]
    notices: list[Notice]


class AuditEntry(BaseModel):
    at: str
    event: str
    by: str | None = None
    level: int | None = None
    note: str | None = None


class Page(BaseModel):
    id: str
    kind: Literal["pause", "pause_overrun", "resume", "distress", "ask_supervisor", "help", "vip_wait"]
    priority: Literal["urgent", "high", "normal", "low"]
    counter: str
    window: str
    message: str
    details: dict[str, Any]
    status: Literal["open", "acknowledged", "resolved"]
    created_at: str
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    resolved_at: str | None = None
    resolution_note: str | None = None
    escalation_level: int = Field(default=0, description="0 = first responder; n = the n-th manager after")
    paged: list[str] = Field(default_factory=list, description="managers paged so far, in escalation order")
    presses: int = Field(default=1, description="repeat presses folded into this page")
    repeats: int = Field(default=0, description="times the page was sent again unacknowledged")
    replies: list[dict[str, Any]] = Field(default_factory=list)
    audit: list[AuditEntry] = Field(default_factory=list)


class PageEnvelope(BaseModel):
    page: Page


class PageList(BaseModel):
    pages: list[Page]


class Alert(BaseModel):
    id: str
    kind: str
    counter: str
    status: Literal["sent", "acknowledged", "resolved"]
    page_id: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    reply: str | None = None
    created_at: str


class AlertEnvelope(BaseModel):
    alert: Alert


class Health(BaseModel):
    status: str
