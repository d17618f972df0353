"""How the services talk: every way a message travels between them, and why each is the right one.

Services never import each other's code; they share the domain and Redis. Between services:

1. Counter to pager, **page requests** (an alert, a pause, a resume, an overrun, a long wait): an entry in the
   consumer-group stream `keys.page_requests()` (CHANNELS, PAGE_REQUESTS), added in the MULTI that records the
   alert and its PageRequest in the branch's outbox (`request_page`). An alarm must be stored before it is
   announced and reach a manager within milliseconds: the stream wakes exactly one blocked pager worker, the
   outbox is the record, and the pager's sweeper delivers from it whatever a lost or killed worker left.
2. Pager to counter, **page news** (the page was made or a press folded into it, acknowledged, answered, resolved,
   cleared, closed): an entry in the consumer-group stream `keys.page_news()` (PAGE_NEWS), added in the MULTI that
   changes the page (`tell_counter`). An answer to a teller must not be lost either, nor wait behind other work:
   the way back is the same transport as the way there. The entry carries the whole PageEvent.
3. Counter to kiosk, **screen news** (a ticket called, a pause, a resume, an opening, a closing, a transfer): an
   RQ job on the queue `kiosk` (JobSpec below, JSON payloads), enqueued after the change. The lobby screen is
   drawn from what Redis holds, so a lost or repeated refresh costs a redraw, never an alarm; RQ gives the
   retries, the failure records and rq-dashboard. A ticket's issue marks its branch's screen stale instead
   (`keys.screens_stale()`, item 5), so that a burst of tickets is one redraw.

Within one service, two more, each a Redis structure its workers poll:

4. Pager: **timers** (repeat, escalate, close an information page) are members of a sorted set per branch scored
   by when they fall due (services/domain/pages.py), written in the MULTI that changes the page. Every pager
   worker looks every 0.1 s: an RQ job per timer rounded deadlines to whole seconds and waited behind other jobs.
5. Kiosk: **stale screens**, a set of branch ids the issue script adds to; the kiosk worker redraws each every
   0.2 s (services/kiosk/jobs.py).

Consumers read each stream as one group, acknowledge and delete what they have done (so a stream's length is
its backlog), and claim what a dead consumer held (services/runtime/consumer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, NamedTuple

import redis
from pydantic import BaseModel, ConfigDict, Field

from services.domain import keys

KIOSK = "kiosk"
COUNTER = "counter"
PAGER = "pager"
SERVICES = (KIOSK, COUNTER, PAGER)
# RQ queues, one per service whose worker runs jobs: the kiosk's screen, the pager's archive.
QUEUES = (KIOSK, PAGER)


class JobSpec(NamedTuple):
    queue: str
    path: str


# Kiosk: the lobby screen's stream.
TICKET_CALLED = JobSpec(KIOSK, "services.kiosk.jobs.ticket_called")
SCREEN_CHANGED = JobSpec(KIOSK, "services.kiosk.jobs.screen_changed")
# Pager: copy a closed business day into the records database.
ARCHIVE_DAY = JobSpec(PAGER, "services.pager.archive.archive_job")


@dataclass(frozen=True)
class Channel:
    """A consumer-group stream between services: its key, and the group (the service) that reads it."""

    key: str
    group: str


PAGE_REQUESTS = Channel(keys.page_requests(), PAGER)
PAGE_NEWS = Channel(keys.page_news(), COUNTER)
CHANNELS = (PAGE_REQUESTS, PAGE_NEWS)


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class PageKind(StrEnum):
    PAUSE = "pause"
    PAUSE_OVERRUN = "pause_overrun"
    RESUME = "resume"
    DISTRESS = "distress"
    ASK_SUPERVISOR = "ask_supervisor"
    HELP = "help"
    VIP_WAIT = "vip_wait"
    ENDPOINT_OFFLINE = "endpoint_offline"
    LONG_SERVICE = "long_service"
    QUEUE_LONG = "queue_long"


# The calls a teller makes by pressing a button (an alert's kind), and the priority each is paged with.
CALLS: dict[str, Priority] = {
    PageKind.DISTRESS: Priority.URGENT, PageKind.ASK_SUPERVISOR: Priority.HIGH, PageKind.HELP: Priority.HIGH,
}

# What people read of page kinds and priorities, defined once: the pages get them in their page data.
# Kinds in the order a manager reads them (the caller's needs first).
KIND_NAMES: dict[str, tuple[str, str]] = {
    PageKind.DISTRESS: ("紧急求助", "Distress"),
    PageKind.HELP: ("需要协助", "Help"),
    PageKind.ASK_SUPERVISOR: ("请示主管", "Ask a supervisor"),
    PageKind.PAUSE: ("窗口暂停", "Counter paused"),
    PageKind.PAUSE_OVERRUN: ("暂停超时", "Pause overrun"),
    PageKind.VIP_WAIT: ("贵宾久等", "VIP waiting long"),
    PageKind.QUEUE_LONG: ("排队过长", "Long queue"),
    PageKind.LONG_SERVICE: ("办理超时", "Long service"),
    PageKind.ENDPOINT_OFFLINE: ("设备离线", "Device offline"),
    PageKind.RESUME: ("恢复服务", "Counter resumed"),
}
PRIORITY_NAMES: dict[str, tuple[str, str]] = {
    Priority.URGENT: ("紧急", "Urgent"), Priority.HIGH: ("高", "High"), Priority.NORMAL: ("普通", "Normal"),
    Priority.LOW: ("仅供知悉", "For information"),
}
# A low-priority page is information: nobody must acknowledge it, and it closes by itself.
INFORMATION = str(Priority.LOW)
# Calls whose terminal a customer can read: answered with REPLY_PRESETS only, never by name.
DISCREET = (str(PageKind.DISTRESS),)
# A distress call's terminal is read across the counter: its manager answers only with one of these, which never
# say who is coming.
REPLY_PRESETS: dict[str, tuple[str, str]] = {
    "seen": ("已收到", "Seen"),
    "coming": ("马上到", "On the way"),
    "wait": ("请稍候", "Hold on"),
}


def vocabulary() -> dict[str, Any]:
    """Return the names of page kinds, priorities and discreet replies, as a page's data carries them."""
    return {
        "calls": list(CALLS),
        "information": INFORMATION,
        "discreet": list(DISCREET),
        "kinds": {str(k): {"name": zh, "name_en": en} for k, (zh, en) in KIND_NAMES.items()},
        "priorities": {str(p): {"name": zh, "name_en": en, "rank": rank}
                       for rank, (p, (zh, en)) in enumerate(PRIORITY_NAMES.items())},
        "reply_presets": {k: {"name": zh, "name_en": en} for k, (zh, en) in REPLY_PRESETS.items()},
    }


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    branch: str


class TicketCalled(Payload):
    number: str
    category: str
    counter: str
    window: str
    called_at: str
    recall: bool = False


class ScreenChanged(Payload):
    reason: str


class ArchiveDay(Payload):
    day: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class PageRequest(Payload):
    """What a counter asks the pager for; kept in the outbox until the page exists."""

    alert_id: str
    kind: PageKind
    priority: Priority
    counter: str
    window: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: str


class PagedTo(BaseModel):
    """A manager a new page went to (None for a distress call, whose terminal is never told who), and whether
    their device was live then."""

    manager: str | None
    live: bool


class PageEvent(Payload):
    """What became of an alert's page, for the counter that raised it (and the presses folded in)."""

    alert_id: str
    alert_ids: list[str] = Field(default_factory=list)
    counter: str
    page_id: str
    event: Literal["created", "acknowledged", "replied", "resolved", "cleared", "expired"]
    by: str | None = None
    by_name: str | None = None
    at: str
    message: str | None = None
    # A distress call's discreet reply (REPLY_PRESETS), whose text is `message`.
    preset: str | None = None
    # The page's status after the event: a press folded into an acknowledged page is acknowledged at once.
    status: Literal["open", "acknowledged", "resolved"] | None = None
    # Of a new page: the managers it went to, in escalation order; all but the last were skipped as offline.
    paged: list[PagedTo] = Field(default_factory=list)


def request_page(pipe: redis.client.Pipeline, request: PageRequest) -> None:
    """Hand a page request to the pager workers: add its stream entry to the caller's MULTI.

    The entry carries the branch and alert ids, nothing else; the request itself is in the outbox, in the same
    MULTI, so a worker that reads the entry finds it there.
    """
    pipe.xadd(PAGE_REQUESTS.key, {"branch": request.branch, "alert": request.alert_id})


def tell_counter(pipe: redis.client.Pipeline, event: PageEvent) -> None:
    """Hand what became of an alert's page to the counter workers: add its stream entry to the caller's MULTI."""
    pipe.xadd(PAGE_NEWS.key, {"branch": event.branch, "event": event.model_dump_json()})
