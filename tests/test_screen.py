"""Taking a ticket: one round trip that issues, counts the allowance and marks the lobby screen for a redraw.

These tests use a Redis of their own, so that the session stack's kiosk worker, which redraws every stale
screen of the session's Redis five times a second, cannot take their work first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import redis

from services.common import clock, counters, keys, lines, ratelimits, tickets
from services.common.config import Branch
from services.common.redis_server import RedisServer
from services.kiosk import jobs, screen


@pytest.fixture
def own(tmp_path: Path) -> Iterator[redis.Redis]:
    server = RedisServer(tmp_path, appendonly=False).start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()
    server.stop()


def screen_events(r: redis.Redis, branch: Branch) -> list[tuple[str, dict]]:
    return [(fields["type"], json.loads(fields["data"]))
            for _, fields in r.xrange(keys.stream(branch.id, keys.SCREEN))]


def test_a_burst_of_tickets_redraws_the_screen_once(own, branch):
    personal = branch.category("personal")
    taken = [tickets.take(own, branch, personal) for _ in range(5)]
    assert [t.number for t in taken] == ["A001", "A002", "A003", "A004", "A005"]
    assert screen_events(own, branch) == [], "the request itself draws nothing"
    assert own.smembers(keys.screens_stale()) == {branch.id}

    assert jobs.redraw_stale_screens(own) == 1
    events = screen_events(own, branch)
    assert [event for event, _ in events] == [screen.WAITING], "five tickets, one redraw"
    assert events[0][1]["waiting"]["personal"]["count"] == 5
    assert jobs.redraw_stale_screens(own) == 0 and len(screen_events(own, branch)) == 1, "nothing new, no event"


def test_a_failed_redraw_leaves_every_popped_screen_stale(own, branch, quick_branch, monkeypatch):
    for b in (branch, quick_branch):
        tickets.take(own, b, b.categories[0])

    def broken(r: redis.Redis, b: Branch, **_: object) -> None:
        raise redis.ConnectionError("lost Redis mid-redraw")

    monkeypatch.setattr(screen, "publish", broken)
    with pytest.raises(redis.ConnectionError):
        jobs.redraw_stale_screens(own)
    assert own.smembers(keys.screens_stale()) == {branch.id, quick_branch.id}, "tried again next round"


def test_the_ticket_taken_is_what_reading_it_back_shows(own, branch):
    """The answer built from the issue script's reply equals a fresh read, redirect and estimate included."""
    vip, personal = branch.category("vip"), branch.category("personal")
    for _ in range(3):
        tickets.take(own, branch, vip)
    # The VIP counter pauses and its line is redirected to window 3 (written as the counter service does).
    own.hset(keys.counter(branch.id, "vip"), "status", counters.PAUSED)
    rule = counters.RedirectRule(category="vip", from_counter="vip", to_counter="3", window="3",
                                 since=clock.local_iso(branch))
    own.hset(keys.redirects(branch.id), "vip", json.dumps(asdict(rule)))
    for category in (vip, personal):
        taken = tickets.take(own, branch, category)
        assert taken == tickets.TicketReader(own, branch).get(taken.number)
        assert taken.position and taken.estimated_wait_s
    vip_ticket = tickets.TicketReader(own, branch).get("V004")
    assert vip_ticket.redirect is not None and vip_ticket.redirect.window == "3"
    assert taken.redirect is None, "personal is not redirected"


def test_tickets_are_issued_after_redis_forgot_the_script(own, branch):
    """A restarted Redis knows no scripts: the issue runs by SHA, so it is loaded and the pipeline run again."""
    personal = branch.category("personal")
    assert tickets.take(own, branch, personal).number == "A001"
    own.script_flush()
    assert tickets.take(own, branch, personal).number == "A002"
    assert own.zcard(keys.line(branch.id, clock.business_day(branch), "personal")) == 2


def test_a_used_up_allowance_refuses_the_ticket_and_writes_nothing(own, branch):
    personal = branch.category("personal")
    now_s = clock.now().timestamp()
    allowances = [lines.Allowance("lobby:test:minute", 2, 60), lines.Allowance("lobby:test:hour", 3, 3600)]
    for _ in range(2):
        tickets.take(own, branch, personal, allowances)
    before = {key: own.dump(key) for key in own.scan_iter("*")}
    with pytest.raises(lines.RateLimited) as refused:
        tickets.take(own, branch, personal, allowances)
    assert refused.value.index == 0, "the minute's allowance is the one used up"
    assert {key: own.dump(key) for key in own.scan_iter("*")} == before
    assert own.get("lobby:test:minute") == "2" and own.get("lobby:test:hour") == "2"
    assert 0 < own.ttl("lobby:test:minute") <= 60
    assert 1 <= ratelimits.retry_after_s(allowances[0], now_s) <= 60
