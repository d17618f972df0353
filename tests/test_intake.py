"""The pager's intake: page requests come by the page-request stream, one consumer per pager worker.

Most tests here run the intake in process on a Redis of their own, where no stack's worker competes for the
entries; the last one watches the session stack's pager worker take a press from the stream.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import requests

from services.common import contracts, keys
from services.common.contracts import PageKind, Priority
from services.common.redis_server import RedisServer
from services.counter import alerts
from services.pager import intake, jobs, pages
from tests.conftest import BRANCH, settle
from tests.sse import eventually


@pytest.fixture(scope="module")
def own_server(redis_server, tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("intake-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def ir(own_server, monkeypatch) -> Iterator[redis.Redis]:
    """A client on this module's own Redis, emptied; every client of this process goes there during the test."""
    monkeypatch.setenv("REDIS_URL", own_server.url)
    client = redis.Redis.from_url(own_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def _raise(r: redis.Redis, branch, counter: str = "2", kind: PageKind = PageKind.HELP):
    request = alerts.page_request(branch, counter, kind, Priority.HIGH, f"{counter} 窗口需要协助", {})
    alerts.raise_alert(r, request)
    return request


def test_each_entry_goes_to_one_consumer_and_each_alert_into_one_page(ir, branch, monkeypatch):
    monkeypatch.setattr(intake, "BATCH", 7)
    raised = [_raise(ir, branch, counter, kind).alert_id for counter in ("vip", "1", "2", "3", "4")
              for kind in (PageKind.HELP, PageKind.DISTRESS) for _ in range(4)]
    intake.ensure_group(ir)
    taken: dict[str, list[intake.Entry]] = {"a": [], "b": []}
    while True:
        got = {name: intake.read(ir, name) for name in taken}
        for name, entries in got.items():
            taken[name] += entries
        if not any(got.values()):
            break
    a, b = ({entry_id for entry_id, _ in taken[name]} for name in taken)
    assert a and b and not a & b and len(a | b) == len(raised), "each entry to exactly one consumer"
    backlog = contracts.page_request_backlog(ir)
    assert (backlog["lag"], backlog["pending"]) == (0, len(raised)), "all read, none done yet"
    assert {c["name"]: c["pending"] for c in backlog["consumers"]} == {"a": len(a), "b": len(b)}
    for name, entries in taken.items():
        intake.handle(ir, entries, {BRANCH}, name)
    backlog = contracts.page_request_backlog(ir)
    assert (backlog["lag"], backlog["pending"]) == (0, 0)
    assert ir.hlen(keys.outbox(BRANCH)) == 0
    made = pages.list_pages(ir, BRANCH, "all")
    folded = Counter(alert for page in made for alert in page.details["alert_ids"])
    assert set(folded) == set(raised) and set(folded.values()) == {1}, "each alert in exactly one page, once"
    assert len(made) == 10, "one page per counter and kind: repeat presses fold"


def test_a_consumer_back_from_a_lost_connection_first_finishes_what_it_held(ir, branch):
    raised = [_raise(ir, branch, counter).alert_id for counter in ("1", "2", "3")]
    intake.ensure_group(ir)
    held = intake.read(ir, "a")  # taken; then the connection dropped before they were handled or acknowledged
    assert [fields["alert"] for _, fields in held] == raised and intake.read(ir, "a") == []
    assert intake.read(ir, "a", own=True) == held, "what it holds, it reads again"
    assert intake.drain(ir, "a") == 3
    assert contracts.page_request_backlog(ir)["pending"] == 0
    assert sorted(ir.hkeys(keys.page_for_alert(BRANCH))) == sorted(raised)


def test_a_branch_this_worker_does_not_serve_stays_in_the_outbox_for_a_sweeper(ir, branch):
    request = _raise(ir, branch)
    intake.ensure_group(ir)
    entries = intake.read(ir, "a")
    assert intake.handle(ir, entries, {"elsewhere"}, "a") == 0
    assert contracts.page_request_backlog(ir)["pending"] == 0, "read and let go"
    assert ir.hkeys(keys.outbox(BRANCH)) == [request.alert_id] and not ir.exists(keys.page_for_alert(BRANCH))
    assert jobs.sweep_outbox(ir, grace_s=0) == 1, "a sweeper of a worker that serves the branch delivers it"
    assert ir.hkeys(keys.page_for_alert(BRANCH)) == [request.alert_id]


def test_an_alert_whose_request_is_gone_from_the_outbox_is_not_paged_again(ir, branch):
    request = _raise(ir, branch)
    assert jobs.sweep_outbox(ir, grace_s=0) == 1  # the sweeper was first
    assert intake.drain(ir, "a") == 0, "its entry is read and let go: the page exists"
    assert ir.xlen(keys.stream(BRANCH, keys.DEVICE)) == 1 and ir.hkeys(keys.page_for_alert(BRANCH)) == [
        request.alert_id]


def test_the_group_comes_back_when_the_stream_is_deleted(ir, branch):
    intake.ensure_group(ir)
    intake.ensure_group(ir)  # BUSYGROUP is fine
    ir.delete(keys.page_requests())
    assert intake.read(ir, "a") == []
    assert [g["name"] for g in ir.xinfo_groups(keys.page_requests())] == [contracts.PAGE_REQUESTS_GROUP]
    request = _raise(ir, branch)
    assert [fields["alert"] for _, fields in intake.read(ir, "a")] == [request.alert_id]


def test_consumers_of_dead_workers_are_removed_with_what_they_held(ir, branch, monkeypatch):
    for counter in ("1", "2"):
        _raise(ir, branch, counter)
    intake.ensure_group(ir)
    assert len(intake.read(ir, "dead")) == 2
    assert intake.tidy(ir, "alive") == [], "it took entries just now"
    monkeypatch.setattr(intake, "STALE_S", 0.0)
    assert intake.tidy(ir, "dead") == [], "never itself"
    assert intake.tidy(ir, "alive") == ["dead"]
    backlog = contracts.page_request_backlog(ir)
    assert (backlog["pending"], backlog["consumers"]) == (0, [])
    assert ir.hlen(keys.outbox(BRANCH)) == 2, "their alerts wait in the outbox, for the sweeper"


def test_the_consumer_outlives_a_redis_crash_and_stops_when_asked(own_server, ir, branch, caplog):
    caplog.set_level(logging.INFO, logger="lobby.pager")
    stop = threading.Event()
    consumer = threading.Thread(target=intake.consume, args=(stop,), daemon=True)
    consumer.start()
    try:
        first = _raise(ir, branch, "1")
        eventually(lambda: ir.hexists(keys.page_for_alert(BRANCH), first.alert_id), timeout=5)
        own_server.process.kill()  # a crash
        own_server.process.wait()
        time.sleep(0.5)
        own_server.start()
        fresh = redis.Redis.from_url(own_server.url, decode_responses=True)
        second = _raise(fresh, branch, "2")
        started = time.monotonic()
        eventually(lambda: fresh.hexists(keys.page_for_alert(BRANCH), second.alert_id), timeout=10)
        assert time.monotonic() - started < 5, "read again within the reconnect backoff (no sweeper runs here)"
        assert any("lost Redis" in record.getMessage() for record in caplog.records), "not silently"
    finally:
        stop.set()
        consumer.join(3)
    assert not consumer.is_alive()
    assert caplog.records[-1].getMessage().endswith("stopped")


def test_a_press_reaches_the_device_by_the_stream_and_queues_no_job(live, r, token, sse):
    api = f"/api/v1/branches/{BRANCH}"
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    feed = sse(f"{live.url('pager')}{api}/pages/events", headers=device)
    response = requests.post(f"{live.url('counter')}{api}/counters/2/alerts", json={"kind": "distress"},
                             headers={"Authorization": f"Bearer {token('counter', '2')}"}, timeout=5)
    assert response.status_code == 202
    alert_id = response.json()["alert"]["id"]
    feed.wait_for(lambda e: e.type == "page" and e.data["page"]["details"]["alert_id"] == alert_id)
    settle()
    descriptions = [r.hget(key, "description") or "" for key in r.scan_iter("rq:job:*") if r.type(key) == "hash"]
    assert descriptions and not any(contracts.CREATE_PAGE.path in d for d in descriptions), \
        f"the page's timers and its news to the counter are jobs; the page itself is not: {descriptions}"
    backlog = contracts.page_request_backlog(r)
    assert (backlog["length"], backlog["lag"], backlog["pending"]) == (1, 0, 0)
    assert [c["name"].split("-")[0] for c in backlog["consumers"]] == ["pager"], "the stack's pager worker took it"
