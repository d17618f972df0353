"""Taking a ticket: one round trip that issues, counts the allowance and marks the lobby screen for a redraw.

These tests use a Redis of their own_redis, so that the session stack's kiosk worker, which redraws every stale
screen of the session's Redis five times a second, cannot take their work first.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import redis

from services.domain import clock, counters, keys, limits, tickets
from services.domain.branch import Branch
from services.kiosk import jobs, screen


def screen_events(r: redis.Redis, branch: Branch) -> list[tuple[str, dict]]:
    return [(fields["type"], json.loads(fields["data"]))
            for _, fields in r.xrange(keys.stream(branch.id, keys.SCREEN))]


def test_a_burst_of_tickets_redraws_the_screen_once(own_redis, branch, ctx):
    branches = ctx.branches
    personal = branch.category("personal")
    taken = [tickets.take(own_redis, branch, personal) for _ in range(5)]
    assert [t.number for t in taken] == ["A001", "A002", "A003", "A004", "A005"]
    assert screen_events(own_redis, branch) == [], "the request itself draws nothing"
    assert own_redis.smembers(keys.screens_stale()) == {branch.id}

    assert jobs.redraw_stale_screens(own_redis, branches) == 1
    events = screen_events(own_redis, branch)
    assert [event for event, _ in events] == [screen.WAITING], "five tickets, one redraw"
    assert events[0][1]["waiting"]["personal"]["count"] == 5
    assert jobs.redraw_stale_screens(own_redis, branches) == 0, "nothing new"
    assert len(screen_events(own_redis, branch)) == 1, "no event either"


def test_a_failed_redraw_leaves_every_popped_screen_stale(own_redis, branch, quick_branch, monkeypatch, ctx):
    branches = ctx.branches
    for b in (branch, quick_branch):
        tickets.take(own_redis, b, b.categories[0])

    def broken(r: redis.Redis, b: Branch, **_: object) -> None:
        raise redis.ConnectionError("lost Redis mid-redraw")

    monkeypatch.setattr(screen, "publish", broken)
    with pytest.raises(redis.ConnectionError):
        jobs.redraw_stale_screens(own_redis, branches)
    assert own_redis.smembers(keys.screens_stale()) == {branch.id, quick_branch.id}, "tried again next round"


def test_the_ticket_taken_is_what_reading_it_back_shows(own_redis, branch):
    """The answer built from the issue script's reply equals a fresh read, redirect and estimate included."""
    vip, personal = branch.category("vip"), branch.category("personal")
    for _ in range(3):
        tickets.take(own_redis, branch, vip)
    # The VIP counter pauses and its line is redirected to window 3 (written as the counter service does).
    own_redis.hset(keys.counter(branch.id, "vip"), "status", counters.PAUSED)
    rule = counters.RedirectRule(category="vip", from_counter="vip", to_counter="3", window="3",
                                 since=clock.local_iso(branch, clock.SYSTEM.now()))
    own_redis.hset(keys.redirects(branch.id), "vip", json.dumps(asdict(rule)))
    for busy in ("1", "2", "3"):  # every counter calling them serves someone: estimates are minutes, not "next up"
        own_redis.hset(keys.counter(branch.id, busy), "serving", "A900")
    for category in (vip, personal):
        taken = tickets.take(own_redis, branch, category)
        assert taken == tickets.TicketReader(own_redis, branch).get(taken.number)
        assert taken.position and taken.estimated_wait_s
    vip_ticket = tickets.TicketReader(own_redis, branch).get("V004")
    assert vip_ticket.redirect is not None and vip_ticket.redirect.window == "3"
    assert taken.redirect is None, "personal is not redirected"


def test_tickets_are_issued_after_redis_forgot_the_script(own_redis, branch):
    """A restarted Redis knows no scripts: the issue runs by SHA, so it is loaded and the pipeline run again."""
    personal = branch.category("personal")
    assert tickets.take(own_redis, branch, personal).number == "A001"
    own_redis.script_flush()
    assert tickets.take(own_redis, branch, personal).number == "A002"
    assert own_redis.zcard(keys.line(branch.id, clock.business_day(branch, clock.SYSTEM.now()), "personal")) == 2


def test_a_used_up_allowance_refuses_the_ticket_and_writes_nothing(own_redis, branch):
    personal = branch.category("personal")
    now_s = clock.SYSTEM.now().timestamp()
    allowances = [limits.Allowance("lobby:test:minute", 2, 60), limits.Allowance("lobby:test:hour", 3, 3600)]
    for _ in range(2):
        tickets.take(own_redis, branch, personal, allowances)
    before = {key: own_redis.dump(key) for key in own_redis.scan_iter("*")}
    with pytest.raises(limits.RateLimited) as refused:
        tickets.take(own_redis, branch, personal, allowances)
    assert refused.value.index == 0, "the minute's allowance is the one used up"
    assert {key: own_redis.dump(key) for key in own_redis.scan_iter("*")} == before
    assert own_redis.get("lobby:test:minute") == "2" and own_redis.get("lobby:test:hour") == "2"
    assert 0 < own_redis.ttl("lobby:test:minute") <= 60
    assert 1 <= allowances[0].retry_after_s(now_s) <= 60
