"""Repeats and escalation of unacknowledged pages (rule 4: react fast).

A page's pending timers live in one sorted set per branch (`<page id>:repeat`, `<page id>:escalate`,
scored by when they fall due), written in the same MULTI as the page change that sets them. That set is
the truth, and every pager worker reads it for every branch of its Redis every POLL_S (`fire_due`, one round
trip) and fires what is due. This replaced an RQ job per timer, scheduled for the second after the
deadline: RQ keeps whole seconds, and a due job then waited behind the pager queue's other jobs, so timers
were up to 1.5 s late (BENCHMARKS.md, B5); now they are at most POLL_S late plus the write.
A timer acts only if it is still the page's current timer and the page is still open, inside a WATCH
on the page: an acknowledgement, however late, wins; a timer never fires before it is due; and when several
pager workers find the same due timer, one fires it and the others find it moved on.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from services.common import clock, keys, metrics, streams
from services.common.config import Branch
from services.common.schemas import AuditEntry, Page

REPEAT, ESCALATE = "repeat", "escalate"
REPEATED, ESCALATED = "repeated", "escalated"
KINDS = (REPEAT, ESCALATE)
# How often each pager worker looks for due timers: the most a timer can be late, beyond the write itself.
POLL_S = 0.1
# Timers fired per branch per look; more wait for the next look, 0.1 s later.
BATCH = 500


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


def fire_due(r: redis.Redis, branches: Sequence[Branch], grace_s: float = 0.0) -> int:
    """Fire every timer of these branches due more than grace_s ago, found in one round trip; return how many
    repeated or escalated a page (a timer another worker fired first, or of a page answered since, does not)."""
    cutoff = clock.now_ms() - int(grace_s * 1000)
    pipe = r.pipeline(transaction=False)
    for branch in branches:
        pipe.zrangebyscore(keys.timers(branch.id), "-inf", cutoff, start=0, num=BATCH, withscores=True)
    fired = 0
    for branch, due in zip(branches, pipe.execute(), strict=True):
        for name, due_ms in due:
            page_id, kind = name.rsplit(":", 1)
            fired += fire(r, branch, page_id, kind, int(due_ms)) in (REPEATED, ESCALATED)
    return fired


def fire(r: redis.Redis, branch: Branch, page_id: str, kind: str, due_ms: int) -> str:
    """Act on a due timer; return what happened (repeated, escalated, stale, done, early)."""
    if due_ms > clock.now_ms():
        return "early"  # never before its time: the next look fires it
    page_key, timers_key, name = keys.page(branch.id, page_id), keys.timers(branch.id), member(page_id, kind)
    outcome = {"result": "stale"}

    def write(pipe: redis.client.Pipeline) -> None:
        # Run again from the start when a watched key changed: say only what the attempt that ran did.
        outcome["result"] = "stale"
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
            outcome["result"] = ESCALATED
            interval_s = timeout_s(branch, page.priority)
        else:
            # A repeat to the current level; at the top level an escalation timer keeps repeating too.
            page.repeats += 1
            page.audit.append(AuditEntry(at=at, event="repeated", level=page.escalation_level))
            outcome["result"] = REPEATED
            interval_s = (branch.escalation.repeat_urgent_s if kind == REPEAT else timeout_s(branch, page.priority))
        following = {name: now_ms + int(interval_s * 1000)}
        pipe.multi()
        pipe.set(page_key, page.model_dump_json())
        pipe.zadd(timers_key, following)
        if outcome["result"] == ESCALATED:
            metrics.count(pipe, branch.id, f"escalations:{page.kind}")
        streams.append(pipe, keys.stream(branch.id, keys.DEVICE), "page_updated",
                       {"page": page.model_dump(mode="json"), "change": outcome["result"]})

    r.transaction(write, page_key, timers_key)
    return outcome["result"]


def sweep(r: redis.Redis, branch: Branch, grace_s: float) -> int:
    """Fire every timer of one branch overdue by more than the grace time; return how many."""
    return fire_due(r, [branch], grace_s)
