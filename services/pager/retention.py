"""Retention: pages and their alerts are removed once older than the branch's history_days.

A day's tickets, calls, service times and pauses expire by themselves (their keys get a TTL when they
are written); pages are kept by id, so the pager worker sweeps them. Streams are capped by length
as they are written (LOBBY_STREAM_MAXLEN).
"""

from __future__ import annotations

import json
import logging

import redis

from services.domain import keys
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock

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
        raws = r.mget([keys.page(branch.id, page_id) for page_id in old])
        alert_ids = [a for raw in raws if raw for a in json.loads(raw).get("details", {}).get("alert_ids", [])]
        folds = {field for field, page_id in r.hgetall(keys.page_open_for(branch.id)).items() if page_id in old}
        pipe = r.pipeline(transaction=True)
        pipe.delete(*(keys.page(branch.id, page_id) for page_id in old))
        pipe.zrem(keys.pages_all(branch.id), *old)
        pipe.zrem(keys.pages_active(branch.id), *old)
        if alert_ids:
            pipe.hdel(keys.page_for_alert(branch.id), *alert_ids)
            pipe.hdel(keys.cleared(branch.id), *alert_ids)
            pipe.delete(*(keys.alert(branch.id, alert_id) for alert_id in alert_ids))
        if folds:
            pipe.hdel(keys.page_open_for(branch.id), *folds)
        pipe.execute()
        removed += len(old)
        log.info("removed %d pages of branch %s older than %d days", len(old), branch.id, branch.history_days)
