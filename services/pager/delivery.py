"""Making pages: deliver a page request (for the intake, services/pager/intake.py), and the sweeps that deliver
what was left in an outbox and clear the pages of conditions that ended."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from services.domain import keys, pages, presence
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock
from services.domain.contracts import PageRequest

log = logging.getLogger("lobby.pager")
# How long an alert may sit in the outbox without a page before the sweeper sends it again: the intake takes
# its entry within milliseconds, so what is older was lost with a worker or never read.
OUTBOX_GRACE_S = 3.0


def deliver(r: redis.Redis, branch: Branch, request: PageRequest, clock: Clock = SYSTEM,
            paged: list[presence.Paged] | None = None) -> str:
    """Create the page for an alert (once, however often asked), for `paged` when the caller read whom it goes
    to (presence.route); return its id. Its counter is told in the same MULTI (page news)."""
    page, outcome = pages.create(r, branch, request, clock, paged)
    if outcome != "existing":
        log.info("page %s %s (%s, %s) for alert %s at counter %s", page.id, outcome, page.kind, page.priority,
                 request.alert_id, page.counter)
    return page.id


def sweep_outbox(r: redis.Redis, branches: dict[str, Branch], grace_s: float = OUTBOX_GRACE_S,
                 clock: Clock = SYSTEM) -> int:
    """Deliver every alert of these branches that has waited in the outbox longer than the grace time; return
    how many."""
    cutoff = clock.now_ms() - int(grace_s * 1000)
    delivered = 0
    for branch_id in r.smembers(keys.outbox_branches()):
        branch = branches.get(branch_id)
        if branch is None:
            continue
        for alert_id in r.zrangebyscore(keys.outbox_times(branch_id), "-inf", cutoff, start=0, num=500):
            raw = r.hget(keys.outbox(branch_id), alert_id)
            if raw is None:
                r.zrem(keys.outbox_times(branch_id), alert_id)
                continue
            try:
                deliver(r, branch, PageRequest.model_validate_json(raw), clock)
                delivered += 1
            except Exception:
                log.exception("sweeper could not deliver alert %s of %s", alert_id, branch_id)
    if delivered:
        log.warning("sweeper delivered %d alert(s) left in the outbox", delivered)
    return delivered


def clear_ended(r: redis.Redis, branches: Iterable[Branch], clock: Clock = SYSTEM) -> int:
    """Clear the pages of every condition marked ended whose page was not cleared yet (a request that ended it
    died before); return how many."""
    cleared = sum(len(pages.clear_marked(r, branch, clock)) for branch in branches)
    if cleared:
        log.warning("cleared %d page(s) whose condition had ended", cleared)
    return cleared
