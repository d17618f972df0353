"""What the pager worker runs: deliver a page request (for its intake, services/pager/intake.py, and the sweeper),
the jobs of queue `pager` (page timers), and the sweep of the outbox and of overdue timers."""

from __future__ import annotations

import logging
from typing import Any

import redis

from services.common import clock, contracts, keys
from services.common.config import branches, branches_on, settings
from services.common.contracts import PAGE_EVENT, PageEvent, PageRequest, PageTimer
from services.common.redis import for_branch, get_redis
from services.pager import escalation, pages

log = logging.getLogger("lobby.pager")


def create_page(payload: dict[str, Any]) -> str:
    """Create the page for an alert given as an RQ job: jobs a counter of an earlier release queued (an upgrade)."""
    request = PageRequest.model_validate(payload)
    return deliver(for_branch(request.branch), request)


def deliver(r: redis.Redis, request: PageRequest) -> str:
    """Create the page for an alert (once, however often asked) and tell the counter it is out; return its id."""
    branch = branches()[request.branch]
    page, outcome = pages.create(r, branch, request)
    if outcome != "existing":
        log.info("page %s %s (%s, %s) for alert %s at counter %s", page.id, outcome, page.kind, page.priority,
                 request.alert_id, page.counter)
        contracts.enqueue(PAGE_EVENT, PageEvent(
            branch=branch.id, alert_id=request.alert_id, counter=page.counter, page_id=page.id,
            event="created", at=page.created_at,
        ))
    return page.id


def page_timer(payload: dict[str, Any]) -> str:
    """Repeat or escalate a page whose timer is due, unless it was acknowledged meanwhile.

    Timers are fired by `fire_timers` now; this runs the jobs an earlier release scheduled, during an upgrade.
    """
    timer = PageTimer.model_validate(payload)
    return escalation.fire(for_branch(timer.branch), branches()[timer.branch], timer.page_id, timer.kind, timer.due_ms)


def fire_timers(r: redis.Redis | None = None) -> int:
    """Repeat or escalate every page whose timer is due, on every branch of this worker's Redis; return how many.

    Each pager worker does this every escalation.POLL_S.
    """
    mine = branches_on(settings().redis_url) if r is None else list(branches().values())
    return escalation.fire_due(r or get_redis(), mine)


def sweep(r: redis.Redis | None = None) -> None:
    """The pager worker's housekeeping, every second: alerts left in the outbox."""
    sweep_outbox(r)


def sweep_outbox(r: redis.Redis | None = None, grace_s: float | None = None) -> int:
    """Deliver every alert that has waited in the outbox longer than the grace time; return how many."""
    r = r or get_redis()
    grace_ms = int(1000 * (settings().outbox_grace_s if grace_s is None else grace_s))
    cutoff = clock.now_ms() - grace_ms
    delivered = 0
    for branch_id in r.smembers(keys.outbox_branches()):
        if branch_id not in branches():
            continue
        for alert_id in r.zrangebyscore(keys.outbox_times(branch_id), "-inf", cutoff, start=0, num=500):
            raw = r.hget(keys.outbox(branch_id), alert_id)
            if raw is None:
                r.zrem(keys.outbox_times(branch_id), alert_id)
                continue
            try:
                deliver(r, PageRequest.model_validate_json(raw))
                delivered += 1
            except Exception:
                log.exception("sweeper could not deliver alert %s of %s", alert_id, branch_id)
    if delivered:
        log.warning("sweeper delivered %d alert(s) left in the outbox", delivered)
    return delivered
