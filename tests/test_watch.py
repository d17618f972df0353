"""The counter worker's watch: a pause that overruns, and a VIP customer waiting too long, page once each."""

from __future__ import annotations

import json
from datetime import timedelta

from services.domain import clock, keys, pages, watch
from services.domain.desk import Desk
from tests.conftest import BRANCH, issue, run_jobs


def test_a_pause_that_outlasts_its_minutes_pages_once(r, branch):
    """In process; the assertions hold whether or not the session's stack is watching the same Redis."""
    Desk(r, branch, "vip").pause("vault_transfer", 15, None)
    assert watch.pause_overruns(r, branch) == 0, "not before its time"
    # Twenty minutes later (the pause's deadline moved into the past):
    state_key = keys.counter(BRANCH, "vip")
    pause = json.loads(r.hget(state_key, "pause"))
    pause["until"] = clock.local_iso(branch, clock.SYSTEM.now() - timedelta(minutes=5))
    r.hset(state_key, "pause", json.dumps(pause))
    # The running stack's counter worker may be the one to notice first: either way, exactly one page.
    assert watch.pause_overruns(r, branch) in (0, 1)
    assert watch.pause_overruns(r, branch) == 0, "once per pause"
    run_jobs(r)
    overrun = [p for p in pages.list_pages(r, BRANCH, "open") if p.kind == "pause_overrun"]
    assert len(overrun) == 1 and overrun[0].priority == "high"
    assert overrun[0].details["expected_minutes"] == 15 and "超时" in overrun[0].message


def test_a_vip_ticket_waiting_past_the_threshold_pages_once(r, branch):
    fresh, old = (issue(r, branch, branch.category("vip")) for _ in range(2))
    line = keys.line(BRANCH, clock.business_day(branch, clock.SYSTEM.now()), "vip")
    r.zadd(line, {fresh: clock.SYSTEM.now_ms() - 9 * 60_000, old: clock.SYSTEM.now_ms() - 11 * 60_000})
    assert watch.vip_waits(r, branch) in (0, 1)
    assert watch.vip_waits(r, branch) == 0, "once per ticket"
    run_jobs(r)
    waits = [p for p in pages.list_pages(r, BRANCH, "open") if p.kind == "vip_wait"]
    assert [(p.details["ticket"], p.counter) for p in waits] == [(old, "vip")]
    assert waits[0].details["waited_s"] >= 11 * 60
