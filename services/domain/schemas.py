"""Public resource models (API.md): the shapes clients read, and the OpenAPI document shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from services.domain.contracts import PagedTo, PageKind, Priority


class Redirect(BaseModel):
    window: str | None = Field(description="where to go instead; null when no counter that could serve this "
                                           "ticket is open (the customer waits for one)")
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
    overrun: bool = Field(default=False, description="the pause has outlasted its expected minutes, and the lobby "
                                                     "manager has been paged about it")


CounterStatus = Literal["open", "paused", "closed"]


class Counter(BaseModel):
    id: str
    window: str
    status: CounterStatus
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
    window: str | None = Field(description="the window that takes these customers now; null when no counter "
                                           "that serves them is open")
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
    kind: PageKind
    priority: Priority
    counter: str
    window: str
    message: str
    details: dict[str, Any]
    status: Literal["open", "acknowledged", "resolved"]
    created_at: str
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    resolved_at: str | None = None
    resolved_by: str | None = Field(default=None, description="the manager who resolved it; null when the system "
                                                              "closed it (see resolution)")
    resolution: Literal["resolved", "cleared", "expired"] | None = Field(
        default=None, description="how it ended: resolved by a manager; cleared by the system because its "
                                  "condition ended (a paused counter resumed, a waiting customer was called); "
                                  "expired: a low-priority page, for information only, closed by itself")
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
    status: Literal["sent", "acknowledged", "resolved"] = Field(
        description="sent: no manager has it yet; a press folded into a page someone took is acknowledged")
    page_id: str | None = Field(default=None, description="set once the alert is on a manager's page")
    acknowledged_by: str | None = Field(default=None, description="the manager's name; never for a distress call")
    acknowledged_at: str | None = None
    reply: str | None = None
    replied_by: str | None = Field(default=None, description="who wrote the reply (a name); never for a distress call")
    reply_preset: str | None = Field(default=None, description="a distress call's discreet reply: seen, coming, wait")
    resolved_by: str | None = Field(default=None, description="who resolved its page (a name); null when the "
                                                              "system closed it, and for a distress call")
    resolution: Literal["resolved", "cleared", "expired"] | None = None
    paged: list[PagedTo] = Field(default_factory=list, description=(
        "whom its page went to, in escalation order, and whether each device was live: all but the last were "
        "skipped as offline; none live means nobody has seen it yet. Empty until the page exists; the managers "
        "are never named for a distress call"))
    test: bool = Field(default=False, description="a drill of the silent call")
    created_at: str


class AlertEnvelope(BaseModel):
    alert: Alert


class Health(BaseModel):
    status: str


class ManagerInfo(BaseModel):
    id: str
    name: str
    name_en: str


class Device(BaseModel):
    manager: ManagerInfo
    rank: int = Field(description="0 = paged first; n = paged after n escalations")


class DeviceEnvelope(BaseModel):
    device: Device


class FloorPause(BaseModel):
    reason: str
    expected_minutes: int
    since: str
    until: str
    left_s: int = Field(description="seconds left of the expected pause; negative once it runs over")


class FloorServing(BaseModel):
    ticket: str
    category: str
    since: str | None
    serving_s: int | None
    long: bool = Field(description="served longer than its category's long_service_minutes")


class FloorCounter(BaseModel):
    id: str
    window: str
    status: CounterStatus
    pause: FloorPause | None = None
    serving: FloorServing | None = None


class FloorLine(BaseModel):
    category: str
    waiting: int
    longest_wait_s: int | None
    estimated_wait_s: int | None = Field(description="for a ticket taken now; null with no counter open for it")


class FloorRedirect(BaseModel):
    category: str
    from_window: str | None
    to_window: str | None = Field(description="null: no open counter serves them now")


class FloorEndpoint(BaseModel):
    endpoint: str = Field(examples=["display:lobby"])
    kind: Literal["display", "kiosk", "terminal", "device"]
    subject: str
    state: Literal["live", "offline", "unsupervised"] = Field(
        description="unsupervised: never heard of (a screen opened without its screen token, a device never used)")
    since: str | None = Field(default=None, description="live: connected since; offline: offline since")


class Floor(BaseModel):
    """The whole branch at a moment: every counter, line and redirect, and every screen, terminal and device."""

    branch: str
    at: str
    counters: list[FloorCounter]
    lines: list[FloorLine]
    redirects: list[FloorRedirect]
    endpoints: list[FloorEndpoint]
