"""The contract between services: queue names, job paths and versioned payloads.

Services never import each other's code. A command for another service is an RQ job on the
queue named after the service that runs it, enqueued by dotted path with RQ's JSON serializer,
and its one argument is a payload model below dumped to plain JSON.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

import redis
from pydantic import BaseModel, ConfigDict, Field
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from services.common.redis import get_rq_redis, rq_for_branch

KIOSK = "kiosk"
COUNTER = "counter"
PAGER = "pager"
QUEUES = (KIOSK, COUNTER, PAGER)


class JobSpec(NamedTuple):
    queue: str
    path: str


# Kiosk: the lobby screen's stream.
TICKET_CALLED = JobSpec(KIOSK, "services.kiosk.jobs.ticket_called")
SCREEN_CHANGED = JobSpec(KIOSK, "services.kiosk.jobs.screen_changed")
# Pager: turn an alert in the outbox into a page.
CREATE_PAGE = JobSpec(PAGER, "services.pager.jobs.create_page")
# Pager: a page's timer (repeat or escalation) is due.
PAGE_TIMER = JobSpec(PAGER, "services.pager.jobs.page_timer")
# Counter: tell the terminal what became of its alert.
PAGE_EVENT = JobSpec(COUNTER, "services.counter.jobs.page_event")

JOB_RESULT_TTL_S = 60
JOB_FAILURE_TTL_S = 7 * 24 * 3600
JOB_RETRY = Retry(max=3, interval=[1, 2, 5])


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


class PageTimer(Payload):
    """A page's repeat or escalation falls due at due_ms (epoch ms); stale when the page moved on."""

    page_id: str
    kind: Literal["repeat", "escalate"]
    due_ms: int


class PageEvent(Payload):
    """What became of an alert's page, for the counter that raised it (and the presses folded in)."""

    alert_id: str
    alert_ids: list[str] = Field(default_factory=list)
    counter: str
    page_id: str
    event: Literal["created", "updated", "acknowledged", "replied", "resolved"]
    by: str | None = None
    by_name: str | None = None
    at: str
    message: str | None = None


def queue(name: str, connection: redis.Redis | None = None) -> Queue:
    return Queue(name, connection=connection or get_rq_redis(), serializer=JSONSerializer)


def enqueue(spec: JobSpec, payload: Payload, *, job_id: str | None = None, at: datetime | None = None,
            **options: Any) -> Job:
    """Enqueue one job for another service, by its dotted path, with a JSON payload; at a time, if given."""
    options.setdefault("result_ttl", JOB_RESULT_TTL_S)
    options.setdefault("failure_ttl", JOB_FAILURE_TTL_S)
    options.setdefault("retry", JOB_RETRY)
    # The job goes to the queue on the Redis its branch lives on, where that shard's workers take it.
    target = queue(spec.queue, rq_for_branch(payload.branch))
    args = (spec.path, payload.model_dump(mode="json"))
    if at is not None:
        return target.enqueue_at(at, *args, job_id=job_id, **options)
    return target.enqueue(*args, job_id=job_id, **options)
