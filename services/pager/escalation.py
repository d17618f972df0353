"""Repeats and escalation of unacknowledged pages (rule 4: react fast).

A page's pending timers live in one sorted set per branch (`<page id>:repeat`, `<page id>:escalate`,
scored by when they fall due), written in the same MULTI as the page change that sets them. That set is
the truth; an RQ job scheduled for the due second is only the fast way to act on it, and the sweeper
acts on any timer overdue by more than the grace time (a worker killed between writing and scheduling).
A timer acts only if it is still the page's current timer and the page is still open, inside a WATCH
on the page: an acknowledgement, however late, wins, and a timer never fires before it is due.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime

import redis

from services.common import clock, contracts, keys, metrics, streams
from services.common.config import Branch
from services.common.contracts import PAGE_TIMER, PageTimer
from services.common.schemas import AuditEntry, Page

log = logging.getLogger("lobby.escalation")
REPEAT, ESCALATE = "repeat", "escalate"
KINDS = (REPEAT, ESCALATE)
# A timer job that RQ starts this close before its deadline waits it out instead of going back to the queue.
WAIT_OUT_MS = 2000


def member(page_id: str, kind: str) -> str:
    return f"{page_id}:{kind}"


def timeout_s(branch: Branch, priority: str) -> float:
    return float(getattr(branch.escalation, f"{priority}_s"))


def initial_timers(branch: Branch, page: Page, now_ms: int) -> dict[str, int]:
    """Return the timers a new page starts with: escalation by priority, repeats for urgent pages."""
    timers = {}
    escalate_s = timeout_s(branch, page.priority)
    if escalate_s > 0:
        timers[member(page.id, ESCALATE)] = now_ms + int(escalate_s * 1000)
    repeat_s = branch.escalation.repeat_urgent_s
    if page.priority == "urgent" and repeat_s > 0:
        timers[member(page.id, REPEAT)] = now_ms + int(repeat_s * 1000)
    return timers


def cancel(pipe: redis.client.Pipeline, branch_id: str, page_id: str) -> None:
    """Add to a MULTI: the page's timers are gone (acknowledged or resolved)."""
    pipe.zrem(keys.timers(branch_id), *(member(page_id, kind) for kind in KINDS))


def schedule(branch_id: str, timers: dict[str, int]) -> None:
    """Enqueue a job for each timer at its due second (rounded up: RQ's scheduler keeps whole seconds)."""
    for name, due_ms in timers.items():
        page_id, kind = name.rsplit(":", 1)
        when = datetime.fromtimestamp(math.ceil(due_ms / 1000), UTC)
        try:
            contracts.enqueue(
                PAGE_TIMER, PageTimer(branch=branch_id, page_id=page_id, kind=kind, due_ms=due_ms),  # type: ignore[arg-type]
                job_id=f"timer-{branch_id}-{page_id}-{kind}-{due_ms}", at=when,
            )
        except Exception:  # the timer is in the sorted set: the sweeper fires it
            log.exception("could not schedule %s; the sweeper will fire it", name)


def fire(r: redis.Redis, branch: Branch, page_id: str, kind: str, due_ms: int) -> str:
    """Act on a due timer; return what happened (repeated, escalated, stale, done, early)."""
    early_ms = due_ms - clock.now_ms()
    if early_ms > WAIT_OUT_MS:
        schedule(branch.id, {member(page_id, kind): due_ms})
        return "early"
    if early_ms > 0:
        time.sleep(early_ms / 1000)
    page_key, timers_key, name = keys.page(branch.id, page_id), keys.timers(branch.id), member(page_id, kind)
    outcome: dict[str, object] = {"result": "stale", "next": {}}

    def write(pipe: redis.client.Pipeline) -> None:
        score = pipe.zscore(timers_key, name)
        if score is None or int(score) != due_ms:
            return  # rescheduled or cancelled since: not ours to act on
        raw = pipe.get(page_key)
        page = Page.model_validate_json(raw) if raw else None
        if page is None or page.status != "open":
            pipe.multi()
            pipe.zrem(timers_key, name)
            outcome["result"] = "done"
            return
        now_ms = clock.now_ms()
        at = clock.iso(clock.now())
        if kind == ESCALATE and page.escalation_level + 1 < len(branch.managers):
            page.escalation_level += 1
            manager = branch.managers[page.escalation_level]
            page.paged.append(manager.id)
            page.audit.append(AuditEntry(at=at, event="escalated", by=manager.id, level=page.escalation_level,
                                         note=f"unacknowledged; now paging {manager.name}"))
            outcome["result"] = "escalated"
            interval_s = timeout_s(branch, page.priority)
        else:
            # A repeat to the current level; at the top level an escalation timer keeps repeating too.
            page.repeats += 1
            page.audit.append(AuditEntry(at=at, event="repeated", level=page.escalation_level))
            outcome["result"] = "repeated"
            interval_s = (branch.escalation.repeat_urgent_s if kind == REPEAT else timeout_s(branch, page.priority))
        following = {name: now_ms + int(interval_s * 1000)}
        outcome["next"] = following
        pipe.multi()
        pipe.set(page_key, page.model_dump_json())
        pipe.zadd(timers_key, following)
        if outcome["result"] == "escalated":
            metrics.count(pipe, branch.id, f"escalations:{page.kind}")
        streams.append(pipe, keys.stream(branch.id, keys.DEVICE), "page_updated",
                       {"page": page.model_dump(mode="json"), "change": outcome["result"]})

    r.transaction(write, page_key, timers_key)
    if outcome["next"]:
        schedule(branch.id, outcome["next"])  # type: ignore[arg-type]
    return str(outcome["result"])


def sweep(r: redis.Redis, branch: Branch, grace_s: float) -> int:
    """Fire every timer of a branch overdue by more than the grace time; return how many."""
    cutoff = clock.now_ms() - int(grace_s * 1000)
    fired = 0
    for name, due in r.zrangebyscore(keys.timers(branch.id), "-inf", cutoff, start=0, num=500, withscores=True):
        page_id, kind = name.rsplit(":", 1)
        fire(r, branch, page_id, kind, int(due))
        fired += 1
    return fired
