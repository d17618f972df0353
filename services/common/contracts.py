"""The contract between services: queue names, job paths, versioned payloads, and the page-request stream.

Services never import each other's code. A command for another service is an RQ job on the
queue named after the service that runs it, enqueued by dotted path with RQ's JSON serializer,
and its one argument is a payload model below dumped to plain JSON.

Pages are the exception, because they are latency-critical: a counter hands an alert to the pager
workers by an entry in the page-request stream of its Redis (`request_page`), written in the MULTI
that records the alert and its PageRequest in the branch's outbox. The entry only names the alert;
the outbox stays the durable record, which the pager's sweeper re-delivers from.
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

from services.common import keys
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
# Pager: turn an alert in the outbox into a page. Counters no longer enqueue it (they hand pages over by the
# page-request stream); it still runs jobs a counter of an earlier release queued, during an upgrade.
CREATE_PAGE = JobSpec(PAGER, "services.pager.jobs.create_page")
# Pager: a page's timer (repeat or escalation) is due. Only an earlier release enqueues it: the pager workers
# now fire timers from their sorted set (services/pager/escalation.py, fire_due).
PAGE_TIMER = JobSpec(PAGER, "services.pager.jobs.page_timer")
# Counter: tell the terminal what became of its alert.
PAGE_EVENT = JobSpec(COUNTER, "services.counter.jobs.page_event")

# The pager workers of a Redis read its page-request stream (keys.page_requests()) as this consumer group.
PAGE_REQUESTS_GROUP = "pager"
# Entries the stream keeps (trimmed with MAXLEN ~). An entry is read within milliseconds; one trimmed unread
# (a long outage of every pager worker) is still in the outbox, which the sweeper delivers from.
PAGE_REQUESTS_MAXLEN = 5000

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


def request_page(pipe: redis.client.Pipeline, request: PageRequest) -> None:
    """Hand a page request to the pager workers: add its stream entry to the caller's MULTI.

    The entry carries the branch and alert ids, nothing else; the request itself is in the outbox, in the same
    MULTI, so a worker that reads the entry finds it there.
    """
    pipe.xadd(keys.page_requests(), {"branch": request.branch, "alert": request.alert_id},
              maxlen=PAGE_REQUESTS_MAXLEN, approximate=True)


def page_request_backlog(r: redis.Redis) -> dict[str, Any]:
    """Say how far the pager workers of one Redis are behind: entries no worker has read yet (lag), entries read
    but not yet done (pending), and each consumer's pending entries and time since it last took any (idle_s)."""
    key = keys.page_requests()
    found: dict[str, Any] = {"stream": key, "group": PAGE_REQUESTS_GROUP, "length": 0, "lag": 0, "pending": 0,
                             "consumers": []}
    try:
        groups = r.xinfo_groups(key)
    except redis.ResponseError:  # no stream: no alert was ever raised here, and no pager worker ever started
        return found
    found["length"] = r.xlen(key)
    group = next((g for g in groups if _text(g["name"]) == PAGE_REQUESTS_GROUP), None)
    if group is None:  # no pager worker has read this stream yet: every entry waits
        found["lag"] = found["length"]
        return found
    lag = group.get("lag")
    if lag is None:  # Redis 6.2 (no lag), or a lag Redis cannot tell after deletions: count what is left to read
        lag = len(r.xrange(key, min=f"({_text(group['last-delivered-id'])}", count=2 * PAGE_REQUESTS_MAXLEN))
    found["lag"], found["pending"] = int(lag), int(group["pending"])
    found["consumers"] = [{"name": _text(c["name"]), "pending": int(c["pending"]), "idle_s": round(c["idle"] / 1000, 1)}
                          for c in r.xinfo_consumers(key, PAGE_REQUESTS_GROUP)]
    return found


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
