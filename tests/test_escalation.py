"""Timers of unanswered pages: fired from their sorted set when due, never before, once however many look.

On a Redis of the test's own, so that the session stack's pager workers (which look every 0.1 s on the real
clock) cannot fire these fake-clock timers first.
"""

from __future__ import annotations

import threading

from services.domain import alerts, keys, pages
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, Priority


def distress_page(r, branch):
    request = alerts.page_request(branch, "2", PageKind.DISTRESS, Priority.URGENT, "2 窗口紧急求助", {}, SYSTEM.now())
    page, outcome = pages.create(r, branch, request)
    assert outcome == "created"
    return page


def events(r, branch, page_id):
    return [e.event for e in pages.get(r, branch.id, page_id).audit]


def test_a_timer_fires_when_due_and_never_before(own_redis, branch, quick_branch, fake_clock):
    page = distress_page(own_redis, branch)
    repeat_s, escalate_s = branch.escalation.repeat_urgent_s, branch.escalation.urgent_s
    assert repeat_s < escalate_s
    fake_clock.advance(repeat_s - 0.001)
    assert pages.fire_due(own_redis, [branch, quick_branch]) == 0, "a millisecond early: nothing"
    assert events(own_redis, branch, page.id) == ["created"]

    fake_clock.advance(0.001)
    assert pages.fire_due(own_redis, [branch, quick_branch]) == 1
    assert events(own_redis, branch, page.id) == ["created", "repeated"]
    following = own_redis.zscore(keys.timers(branch.id), pages.member(page.id, pages.REPEAT))
    assert following == fake_clock.now_ms() + repeat_s * 1000, "the next repeat is set from now"

    fake_clock.advance(escalate_s - repeat_s)
    assert pages.fire_due(own_redis, [branch]) == 1
    assert events(own_redis, branch, page.id)[-1] == "escalated"
    assert pages.get(own_redis, branch.id, page.id).paged == [branch.managers[0].id, branch.managers[1].id]


def test_several_workers_finding_one_due_timer_fire_it_once(own_redis, branch, fake_clock):
    """Four workers race for one due timer, ten times: each time one page is repeated once, and one says so.

    The loser's WATCH retry finds the timer moved on; it must not report the winner's outcome as its own.
    """
    for _ in range(10):
        page = distress_page(own_redis, branch)
        fake_clock.advance(branch.escalation.repeat_urgent_s)
        fired: list[int] = []
        start = threading.Barrier(4)

        def worker(start: threading.Barrier, fired: list[int]) -> None:
            start.wait()
            fired.append(pages.fire_due(own_redis, [branch]))

        threads = [threading.Thread(target=worker, args=(start, fired)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(fired) == 1, fired
        assert events(own_redis, branch, page.id) == ["created", "repeated"]
        pages.resolve(own_redis, branch, page.id, branch.managers[0], None)  # the next press opens a new page


def test_an_acknowledged_page_has_no_timers_left_to_fire(own_redis, branch, fake_clock):
    page = distress_page(own_redis, branch)
    pages.acknowledge(own_redis, branch, page.id, branch.managers[0])
    fake_clock.advance(branch.escalation.urgent_s + 1)
    assert pages.fire_due(own_redis, [branch]) == 0
    assert own_redis.zcard(keys.timers(branch.id)) == 0


def test_a_page_acknowledged_or_resolved_after_it_climbed_is_never_fired_again(own_redis, branch, fake_clock):
    """Past every deadline a page could have, an acknowledged or resolved page stays as it was left."""
    for finish in ("acknowledge", "resolve"):
        page = distress_page(own_redis, branch)
        fake_clock.advance(branch.escalation.urgent_s)
        assert pages.fire_due(own_redis, [branch]) >= 1
        assert pages.get(own_redis, branch.id, page.id).escalation_level == 1
        deputy = branch.managers[1]
        if finish == "acknowledge":
            pages.acknowledge(own_redis, branch, page.id, deputy)
        else:
            pages.resolve(own_redis, branch, page.id, deputy, None)
        trail = events(own_redis, branch, page.id)
        for _ in range(10):
            fake_clock.advance(branch.escalation.urgent_s + branch.escalation.repeat_urgent_s)
            assert pages.fire_due(own_redis, [branch]) == 0
        assert events(own_redis, branch, page.id) == trail, finish
        assert not [m for m in own_redis.zrange(keys.timers(branch.id), 0, -1) if m.startswith(page.id)]
        if finish == "acknowledge":
            pages.resolve(own_redis, branch, page.id, deputy, None)  # the next press opens a new page
