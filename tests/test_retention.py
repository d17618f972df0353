"""Retention: a day's keys carry the branch's history_days as a last bound; pages older are swept; streams are
capped. (Archived days leave Redis after redis_days: tests/test_archive.py.)"""

from __future__ import annotations

import pytest

from services.domain import alerts, feeds, keys, pages, tickets
from services.domain.clock import SYSTEM
from services.domain.contracts import PageKind, Priority
from services.domain.desk import Desk
from services.domain.errors import NotFound
from services.pager import retention
from services.pager.delivery import deliver
from services.runtime.settings import Context
from tests.conftest import BRANCH, issue

DAY_S = 86_400


def test_a_days_keys_expire_after_the_history_window(r, branch, fake_clock):
    kept = branch.history_days
    issue(r, branch, branch.category("vip"))
    desk = Desk(r, branch, "vip")
    desk.call_next()
    fake_clock.advance(300)
    desk.call_next()  # V001 served: a service time is recorded
    desk.pause("review", 5, None)
    desk.resume()
    day = tickets.TicketReader(r, branch).lines.day
    history = [keys.ticket(BRANCH, day, "V001"), keys.ticket_seq(BRANCH, day, "vip"), keys.line(BRANCH, day, "vip"),
               keys.calls(BRANCH, day), keys.service_times(BRANCH, day, "vip"), keys.pauses(BRANCH, day)]
    for key in history:
        ttl = r.ttl(key)
        if key == keys.line(BRANCH, day, "vip") and ttl == -2:
            continue  # an emptied line is gone already
        assert kept * DAY_S < ttl <= (kept + 1) * DAY_S, (key, ttl)
    assert r.ttl(keys.stats(BRANCH)) == -1, "running counts for /metrics never expire"


def _page(r, branch, counter: str) -> str:
    """Record an alert and deliver its page here, on the fake clock. Its page request is not handed to the pager
    workers: the session stack's pager worker would otherwise make the page on the real clock, or make it again
    after the sweep."""
    request = alerts.page_request(branch, counter, PageKind.HELP, Priority.HIGH, f"{counter} 窗口需要协助", {},
                                  SYSTEM.now())
    pipe = r.pipeline()
    alerts.record(pipe, request)
    pipe.execute()
    return deliver(r, branch, request), request.alert_id


def test_pages_older_than_the_history_window_are_swept_with_their_alerts(r, branch, fake_clock):
    branch = branch.model_copy(update={"history_days": 90})
    old_page, old_alert = _page(r, branch, "2")
    pages.acknowledge(r, branch, old_page, branch.manager("lobby-manager"))
    unresolved_old, _ = _page(r, branch, "3")
    fake_clock.advance(89 * DAY_S)
    assert retention.remove_old_pages(r, branch) == 0, "89 days old: kept"
    fake_clock.advance(2 * DAY_S)
    new_page, new_alert = _page(r, branch, "4")
    assert retention.remove_old_pages(r, branch) == 2
    for gone in (old_page, unresolved_old):
        with pytest.raises(NotFound):
            pages.get(r, BRANCH, gone)
    assert r.zrange(keys.pages_all(BRANCH), 0, -1) == [new_page]
    assert r.zrange(keys.pages_active(BRANCH), 0, -1) == [new_page]
    assert r.hkeys(keys.page_for_alert(BRANCH)) == [new_alert]
    assert not r.exists(keys.alert(BRANCH, old_alert)) and r.exists(keys.alert(BRANCH, new_alert))
    assert list(r.hgetall(keys.page_open_for(BRANCH)).values()) == [new_page], "no fold points at a gone page"
    assert retention.remove_old_pages(r, branch) == 0


def test_streams_keep_about_the_configured_length(r, branch):
    capped = branch.model_copy(update={"stream_maxlen": 100})
    stream = keys.stream(BRANCH, keys.SCREEN)
    for i in range(1_000):
        feeds.append(r, capped, keys.SCREEN, "waiting", {"i": i})
    # Trimming is approximate (whole radix-tree nodes of 100 entries): never more than a node over.
    assert 100 <= r.xlen(stream) <= 200
    assert feeds.dumps({"i": 999}) == r.xrevrange(stream, count=1)[0][1]["data"], "the newest are kept"


def test_lobby_stream_maxlen_caps_every_branchs_streams(monkeypatch):
    monkeypatch.setenv("LOBBY_STREAM_MAXLEN", "100")
    assert {b.stream_maxlen for b in Context.from_env().branches.values()} == {100}
    monkeypatch.delenv("LOBBY_STREAM_MAXLEN")
    assert {b.stream_maxlen for b in Context.from_env().branches.values()} == {10_000}, "each branch's own"
