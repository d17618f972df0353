"""Retention: Redis keeps today and a short window; the records database keeps the history.

- A closed day archived (services/pager/archive.py) and older than the branch's `redis_days` is removed from
  Redis: its tickets, lines, calls, service times, pauses, and the pages created on it with their alerts.
  A day not archived is never removed this way (with the database down, the days wait in Redis), nor one with
  a page still running; what its pages gained since the archive is added to their trail first (the worker's
  `before`, archive.append_late_events).
- Whatever is older than `history_days` goes, archived or not (the branch keeps no history past it): a day's
  keys carry that TTL from when they are written, and pages, kept by id, are swept here.

Streams are capped by length as they are written (LOBBY_STREAM_MAXLEN).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import redis

from services.domain import held_days, keys
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day
from services.pager.report.reads import page_raws_of_day

log = logging.getLogger("lobby.retention")
BATCH = 500


def remove_old_pages(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> int:
    """Remove the branch's pages created before its history window, with their alerts; return how many."""
    cutoff_ms = clock.now_ms() - branch.history_days * 86_400_000
    removed = 0
    while True:
        old = r.zrangebyscore(keys.pages_all(branch.id), "-inf", f"({cutoff_ms}", start=0, num=BATCH)
        if not old:
            return removed
        remove_pages(r, branch, old)
        removed += len(old)
        log.info("removed %d pages of branch %s older than %d days", len(old), branch.id, branch.history_days)


def remove_pages(r: redis.Redis, branch: Branch, page_ids: Sequence[str]) -> None:
    """Remove pages with their alerts and every index that names them, in one transaction."""
    if not page_ids:
        return
    raws = r.mget([keys.page(branch.id, page_id) for page_id in page_ids])
    alert_ids = [a for raw in raws if raw for a in json.loads(raw).get("details", {}).get("alert_ids", [])]
    folds = {field for field, page_id in r.hgetall(keys.page_open_for(branch.id)).items() if page_id in page_ids}
    pipe = r.pipeline(transaction=True)
    pipe.delete(*(keys.page(branch.id, page_id) for page_id in page_ids))
    pipe.zrem(keys.pages_all(branch.id), *page_ids)
    pipe.zrem(keys.pages_active(branch.id), *page_ids)
    if alert_ids:
        pipe.hdel(keys.page_for_alert(branch.id), *alert_ids)
        pipe.hdel(keys.cleared(branch.id), *alert_ids)
        pipe.delete(*(keys.alert(branch.id, alert_id) for alert_id in alert_ids))
    if folds:
        pipe.hdel(keys.page_open_for(branch.id), *folds)
    pipe.execute()


def still_active(r: redis.Redis, branch: Branch, day: str) -> int:
    """Count the pages created on a day that are not resolved yet (open, or acknowledged and not closed)."""
    return sum(1 for _, raw in page_raws_of_day(r, branch, day, keys.pages_active(branch.id)) if raw)


def removable_days(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> list[str]:
    """Return the closed days Redis may forget: archived, older than redis_days, and with no page still running
    (a page a manager has yet to resolve stays on the managers' lists, with its day)."""
    today = date.fromisoformat(business_day(branch, clock.now()))
    keep_from = (today - timedelta(days=branch.redis_days)).isoformat()
    held, archived = held_days.closed(r, branch)
    return sorted(day for day in held & archived if day < keep_from and not still_active(r, branch, day))


def remove_archived_days(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM,
                         before: Callable[[str], object] | None = None) -> list[str]:
    """Remove from Redis the days removable_days gives, calling before(day) first; return them."""
    gone = removable_days(r, branch, clock)
    for day in gone:
        if before is not None:
            before(day)
        remove_day(r, branch, day)
        log.info("removed %s of branch %s from Redis: archived, older than %d days", day, branch.id,
                 branch.redis_days)
    return gone


def remove_day(r: redis.Redis, branch: Branch, day: str) -> None:
    """Remove one day's keys and the pages created on it; the day leaves the closed days last."""
    page_ids, doomed = day_keys(r, branch, day)
    for n in range(0, len(page_ids), BATCH):
        remove_pages(r, branch, page_ids[n:n + BATCH])
    for n in range(0, len(doomed), BATCH):
        r.unlink(*doomed[n:n + BATCH])
    r.srem(keys.closed_days(branch.id), day)


def day_keys(r: redis.Redis, branch: Branch, day: str) -> tuple[list[str], list[str]]:
    """Return what Redis holds of one day: the ids of the pages created on it, and the day's own keys (its
    tickets, lines, service times, pauses, calls and long waits paged)."""
    # Every page the index names, those Redis no longer holds among them: removing them cleans the indexes.
    page_ids = [i for i, _ in page_raws_of_day(r, branch, day, keys.pages_all(branch.id))]
    pipe = r.pipeline(transaction=False)
    for category in branch.categories:
        pipe.get(keys.ticket_seq(branch.id, day, category.id))
    issued = pipe.execute()
    day_keys_ = [keys.ticket(branch.id, day, f"{c.prefix}{n:03d}")
                 for c, count in zip(branch.categories, issued, strict=True) for n in range(1, int(count or 0) + 1)]
    for c in branch.categories:
        day_keys_ += [keys.ticket_seq(branch.id, day, c.id), keys.line(branch.id, day, c.id),
                      keys.service_times(branch.id, day, c.id)]
    day_keys_ += [keys.counter_line(branch.id, day, c.id) for c in branch.counters]
    day_keys_ += [keys.pauses(branch.id, day), keys.calls(branch.id, day), keys.vip_wait_paged(branch.id, day)]
    return page_ids, day_keys_
