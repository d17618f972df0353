"""The streams between services (contracts.CHANNELS): page requests to the pager workers, page news to the counter
workers, each read by one consumer group (services/runtime/consumer.py).

Most tests run the consumers in process on a Redis of their own; the last ones watch the session stack's workers.
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

from services.counter import news
from services.domain import alerts, keys, pages
from services.domain.clock import SYSTEM
from services.domain.contracts import PAGE_NEWS, PAGE_REQUESTS, PageKind, Priority
from services.ops.redis_server import RedisServer
from services.pager import delivery, intake
from services.runtime import consumer
from tests.conftest import BRANCH, settle
from tests.sse import eventually


@pytest.fixture(scope="module")
def own_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("channels-redis"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def ir(own_server) -> Iterator[redis.Redis]:
    """A client on this module's own Redis, emptied."""
    client = redis.Redis.from_url(own_server.url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def _raise(r: redis.Redis, branch, counter: str = "2", kind: PageKind = PageKind.HELP):
    request = alerts.page_request(branch, counter, kind, Priority.HIGH, f"{counter} 窗口需要协助", {}, SYSTEM.now())
    alerts.raise_alert(r, request)
    return request


def test_each_entry_goes_to_one_consumer_and_each_alert_into_one_page(ir, branch, monkeypatch):
    monkeypatch.setattr(consumer, "BATCH", 7)
    handle = intake.handler({BRANCH: branch})
    raised = [_raise(ir, branch, counter, kind).alert_id for counter in ("vip", "1", "2", "3", "4")
              for kind in (PageKind.HELP, PageKind.DISTRESS) for _ in range(4)]
    consumer.ensure_group(ir, PAGE_REQUESTS)
    taken: dict[str, list[consumer.Entry]] = {"a": [], "b": []}
    while True:
        got = {name: consumer.read(ir, PAGE_REQUESTS, name) for name in taken}
        for name, entries in got.items():
            taken[name] += entries
        if not any(got.values()):
            break
    a, b = ({entry_id for entry_id, _ in taken[name]} for name in taken)
    assert a and b and not a & b and len(a | b) == len(raised), "each entry to exactly one consumer"
    backlog = consumer.backlog(ir, PAGE_REQUESTS)
    assert (backlog["lag"], backlog["pending"]) == (0, len(raised)), "all read, none done yet"
    assert {c["name"]: c["pending"] for c in backlog["consumers"]} == {"a": len(a), "b": len(b)}
    for name, entries in taken.items():
        handle(ir, entries, name)
        consumer.done(ir, PAGE_REQUESTS, entries)
    backlog = consumer.backlog(ir, PAGE_REQUESTS)
    assert (backlog["length"], backlog["lag"], backlog["pending"]) == (0, 0, 0), "done entries are deleted"
    assert ir.hlen(keys.outbox(BRANCH)) == 0
    made = pages.list_pages(ir, BRANCH, "all")
    folded = Counter(alert for page in made for alert in page.details["alert_ids"])
    assert set(folded) == set(raised) and set(folded.values()) == {1}, "each alert in exactly one page, once"
    assert len(made) == 10, "one page per counter and kind: repeat presses fold"
    assert ir.xlen(PAGE_NEWS.key) == len(raised), "and each alert's counter is told, in the page's own MULTI"


def test_a_consumer_back_from_a_lost_connection_first_finishes_what_it_held(ir, branch):
    raised = [_raise(ir, branch, counter).alert_id for counter in ("1", "2", "3")]
    consumer.ensure_group(ir, PAGE_REQUESTS)
    held = consumer.read(ir, PAGE_REQUESTS, "a")  # taken; then the connection dropped before they were done
    assert [fields["alert"] for _, fields in held] == raised and consumer.read(ir, PAGE_REQUESTS, "a") == []
    assert consumer.read(ir, PAGE_REQUESTS, "a", own=True) == held, "what it holds, it reads again"
    assert consumer.drain(ir, PAGE_REQUESTS, "a", intake.handler({BRANCH: branch})) == 3
    assert consumer.backlog(ir, PAGE_REQUESTS)["pending"] == 0
    assert sorted(ir.hkeys(keys.page_for_alert(BRANCH))) == sorted(raised)


def test_what_a_dead_consumer_held_is_claimed_by_a_live_one(ir, branch, monkeypatch):
    for counter in ("1", "2"):
        _raise(ir, branch, counter)
    consumer.ensure_group(ir, PAGE_REQUESTS)
    held = consumer.read(ir, PAGE_REQUESTS, "dead")
    assert len(held) == 2 and consumer.claim(ir, PAGE_REQUESTS, "alive") == [], "held just now: not yet"
    assert consumer.tidy(ir, PAGE_REQUESTS, "alive") == [], "a consumer holding entries is never removed"
    monkeypatch.setattr(consumer, "CLAIM_AFTER_S", 0.0)
    assert consumer.claim(ir, PAGE_REQUESTS, "alive") == held
    monkeypatch.setattr(consumer, "STALE_S", 0.0)
    assert consumer.tidy(ir, PAGE_REQUESTS, "dead") == [], "never itself"
    assert consumer.tidy(ir, PAGE_REQUESTS, "alive") == ["dead"], "holding nothing now, it goes"
    backlog = consumer.backlog(ir, PAGE_REQUESTS)
    assert backlog["pending"] == 2 and [c["name"] for c in backlog["consumers"]] == ["alive"]


def test_a_branch_this_worker_does_not_serve_stays_in_the_outbox_for_a_sweeper(ir, branch):
    request = _raise(ir, branch)
    assert consumer.drain(ir, PAGE_REQUESTS, "a", intake.handler({})) == 1
    assert consumer.backlog(ir, PAGE_REQUESTS)["pending"] == 0, "read and let go"
    assert ir.hkeys(keys.outbox(BRANCH)) == [request.alert_id] and not ir.exists(keys.page_for_alert(BRANCH))
    assert delivery.sweep_outbox(ir, {BRANCH: branch}, grace_s=0) == 1, "a sweeper that serves the branch delivers it"
    assert ir.hkeys(keys.page_for_alert(BRANCH)) == [request.alert_id]


def test_an_alert_whose_request_is_gone_from_the_outbox_is_not_paged_again(ir, branch):
    request = _raise(ir, branch)
    assert delivery.sweep_outbox(ir, {BRANCH: branch}, grace_s=0) == 1  # the sweeper was first
    assert consumer.drain(ir, PAGE_REQUESTS, "a", intake.handler({BRANCH: branch})) == 1, "its entry is let go"
    assert ir.xlen(keys.stream(BRANCH, keys.DEVICE)) == 1 and ir.hkeys(keys.page_for_alert(BRANCH)) == [
        request.alert_id]


def test_the_group_comes_back_when_the_stream_is_deleted(ir, branch):
    consumer.ensure_group(ir, PAGE_REQUESTS)
    consumer.ensure_group(ir, PAGE_REQUESTS)  # BUSYGROUP is fine
    ir.delete(PAGE_REQUESTS.key)
    assert consumer.read(ir, PAGE_REQUESTS, "a") == []
    assert [g["name"] for g in ir.xinfo_groups(PAGE_REQUESTS.key)] == [PAGE_REQUESTS.group]
    request = _raise(ir, branch)
    assert [fields["alert"] for _, fields in consumer.read(ir, PAGE_REQUESTS, "a")] == [request.alert_id]


def test_page_news_records_what_became_of_every_press_once_however_often_read(ir, branch):
    first = _raise(ir, branch, "2", PageKind.ASK_SUPERVISOR)
    consumer.drain(ir, PAGE_REQUESTS, "pager", intake.handler({BRANCH: branch}))
    page_id = ir.hget(keys.page_for_alert(BRANCH), first.alert_id)
    pages.reply(ir, branch, page_id, branch.manager("deputy"), "可以")
    consumer.ensure_group(ir, PAGE_NEWS)
    entries = consumer.read(ir, PAGE_NEWS, "counter")
    assert [PAGE_NEWS.group, len(entries)] == ["counter", 3], "made, acknowledged (by the reply), replied"
    handle = news.handler({BRANCH: branch})
    handle(ir, entries, "counter")
    handle(ir, entries, "counter")  # a worker that died before acknowledging: read again, the same result
    consumer.done(ir, PAGE_NEWS, entries)
    stored = alerts.load(ir, BRANCH, first.alert_id)
    assert (stored.status, stored.acknowledged_by, stored.replied_by, stored.reply) == (
        "acknowledged", "副行长", "副行长", "可以")
    told = [f["type"] for _, f in ir.xrange(keys.terminal_stream(BRANCH, "2"))]
    assert told.count("reply") == 2 and "alert_acknowledged" in told


def test_the_consumer_outlives_a_redis_crash_and_stops_when_asked(own_server, ir, branch, caplog):
    caplog.set_level(logging.INFO, logger="lobby.consumer")
    stop = threading.Event()
    client = lambda: redis.Redis.from_url(own_server.url, decode_responses=True)  # noqa: E731
    reader = threading.Thread(target=consumer.consume, daemon=True, args=(
        PAGE_REQUESTS, "pager-test", client, client, intake.handler({BRANCH: branch}), stop))
    reader.start()
    try:
        first = _raise(ir, branch, "1")
        eventually(lambda: ir.hexists(keys.page_for_alert(BRANCH), first.alert_id), timeout=5)
        own_server.process.kill()  # a crash
        own_server.process.wait()
        time.sleep(0.5)
        own_server.start()
        fresh = client()
        second = _raise(fresh, branch, "2")
        started = time.monotonic()
        eventually(lambda: fresh.hexists(keys.page_for_alert(BRANCH), second.alert_id), timeout=10)
        assert time.monotonic() - started < 5, "read again within the reconnect backoff (no sweeper runs here)"
        assert any("lost Redis" in record.getMessage() for record in caplog.records), "not silently"
    finally:
        stop.set()
        reader.join(3)
    assert not reader.is_alive()
    assert caplog.records[-1].getMessage().endswith("stopped")


def test_a_press_and_its_answer_travel_by_the_streams_and_queue_no_job(live, r, token, sse):
    api = f"/api/v1/branches/{BRANCH}"
    device = {"Authorization": f"Bearer {token('device', 'lobby-manager')}"}
    feed = sse(f"{live.url('pager')}{api}/pages/events", headers=device)
    terminal = sse(f"{live.url('counter')}{api}/counters/2/events", params={"token": token("counter", "2")})
    response = requests.post(f"{live.url('counter')}{api}/counters/2/alerts", json={"kind": "help"},
                             headers={"Authorization": f"Bearer {token('counter', '2')}"}, timeout=5)
    assert response.status_code == 202
    alert_id = response.json()["alert"]["id"]
    page = feed.wait_for(lambda e: e.type == "page" and e.data["page"]["details"]["alert_id"] == alert_id)
    requests.post(f"{live.url('pager')}{api}/pages/{page.data['page']['id']}/ack", headers=device, timeout=5)
    terminal.wait_for(lambda e: e.type == "alert_acknowledged")
    settle()
    assert not list(r.scan_iter("rq:job:*")), "neither the page nor its news is an RQ job"
    for channel in (PAGE_REQUESTS, PAGE_NEWS):
        backlog = consumer.backlog(r, channel)
        assert (backlog["length"], backlog["pending"]) == (0, 0), channel
        assert [c["name"].split("-")[0] for c in backlog["consumers"]] == [channel.group], "the stack's worker"
