"""Beyond one machine: branches split over two Redis servers, several workers on one queue.

Real servers on loopback ports: two Redis servers, each with its own workers, and three pager workers
on the first, reading its page-request stream as one consumer group. Sentinel failover is in
tests/test_sentinel.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from rq import Worker

from services.domain import keys
from services.domain.branch import DEMO_CONFIG
from services.domain.contracts import PAGE_REQUESTS
from services.ops.redis_server import RedisServer, free_port
from services.ops.stack import Stack
from services.runtime import consumer
from services.runtime.worker import running
from services.web import auth
from tests.sse import SSEClient, eventually

EAST, WEST = "east", "west"


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Iterator[dict[str, RedisServer]]:
    servers = {b: RedisServer(tmp_path_factory.mktemp(f"redis-{b}")).start() for b in (EAST, WEST)}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def split_stack(shards, tmp_path_factory) -> Iterator[Stack]:
    """East lives on the default Redis, west on its own; three pager workers on each."""
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    east = demo.replace('id = "zhongnan"', f'id = "{EAST}"')
    west = demo.replace('id = "zhongnan"', f'id = "{WEST}"\nredis_url = "{shards[WEST].url}"')
    config = tmp_path_factory.mktemp("split-config") / "branches.toml"
    config.write_text(east + "\n" + west, encoding="utf-8")
    stack = Stack(ports={s: free_port() for s in ("kiosk", "counter", "pager")}, redis_url=shards[EAST].url,
                  config_path=config, log_dir=tmp_path_factory.mktemp("split-logs"), workers={"pager": 3},
                  var_dir=tmp_path_factory.mktemp("split-var")).start()
    yield stack
    stack.stop()


@pytest.fixture
def shard_clients(shards) -> dict[str, redis.Redis]:
    found = {b: redis.Redis.from_url(server.url, decode_responses=True) for b, server in shards.items()}
    for client in found.values():
        for key in client.scan_iter("lobby:*", count=1000):
            client.delete(key)
    return found


def _story(stack: Stack, r: redis.Redis, branch: str, results: dict[str, object]) -> None:
    """Rule 1 at one branch: VIP customers wait, the VIP counter pauses, window 3 calls V001."""
    try:
        api = f"/api/v1/branches/{branch}"
        vip = {"Authorization": f"Bearer {auth.issue(r, branch, auth.COUNTER, 'vip')}"}
        three = {"Authorization": f"Bearer {auth.issue(r, branch, auth.COUNTER, '3')}"}
        device = SSEClient(f"{stack.url('pager')}{api}/pages/events",
                           params={"token": auth.issue(r, branch, auth.DEVICE, "lobby-manager")}).start()
        screen = SSEClient(f"{stack.url('kiosk')}{api}/screen/events").start()
        for _ in range(2):
            assert requests.post(f"{stack.url('kiosk')}{api}/tickets", json={"category": "vip"},
                                 timeout=5).status_code == 201
        paused = requests.post(f"{stack.url('counter')}{api}/counters/vip/pause", headers=vip,
                               json={"reason": "vault_transfer", "expected_minutes": 15}, timeout=5)
        assert paused.status_code == 200
        page = device.wait_for(lambda e: e.type == "page" and e.data["page"]["kind"] == "pause", timeout=15)
        notice = screen.wait_for(lambda e: e.type == "notice" and e.data["notices"], timeout=15)
        called = requests.post(f"{stack.url('counter')}{api}/counters/3/call-next", headers=three, timeout=5)
        shown = screen.wait_for(lambda e: e.type == "ticket_called", timeout=15)
        device.close()
        screen.close()
        results[branch] = {"vip_waiting": page.data["page"]["details"]["vip_waiting"],
                           "notice": notice.data["notices"][0]["tickets"], "called": called.json()["ticket"]["number"],
                           "shown": (shown.data["number"], shown.data["window"])}
    except BaseException as exc:  # reported by the test, not lost in the thread
        results[branch] = exc


def test_rule_1_runs_on_a_branch_of_each_redis_at_once_and_each_keeps_its_own(split_stack, shards, shard_clients):
    results: dict[str, object] = {}
    threads = [threading.Thread(target=_story, args=(split_stack, shard_clients[b], b, results)) for b in (EAST, WEST)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for branch in (EAST, WEST):
        assert results[branch] == {"vip_waiting": 2, "notice": ["V001", "V002"], "called": "V001",
                                   "shown": ("V001", "3")}, branch
    for here, other in ((EAST, WEST), (WEST, EAST)):
        on_here = shard_clients[here]
        assert list(on_here.scan_iter(f"{keys.branch(other)}*")) == [], f"{here}'s Redis holds no {other} key"
        assert list(on_here.scan_iter(f"{keys.branch(here)}:page:*")), f"{here}'s pages are on its own Redis"
    # Each Redis's own workers did that branch's work: its kiosk worker its jobs, its five workers alive there.
    for branch in (EAST, WEST):
        on_shard = redis.Redis.from_url(shards[branch].url, decode_responses=True)
        done = {w.name: w.successful_job_count for w in Worker.all(connection=on_shard)}
        assert sum(done.values()) > 0, (branch, done)
        eventually(lambda on_shard=on_shard: Counter(w["service"] for w in running(on_shard)) == {
            "kiosk": 1, "counter": 1, "pager": 3})


def test_three_pager_workers_turn_1000_alerts_into_exactly_one_page_each(split_stack, shards, shard_clients):
    r = shard_clients[EAST]
    counters = ["vip", "1", "2", "3", "4"]
    tokens = {c: auth.issue(r, EAST, auth.COUNTER, c) for c in counters}
    accepted: list[str] = []
    lock = threading.Lock()

    def terminal(counter: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[counter]}"
        url = f"{split_stack.url('counter')}/api/v1/branches/{EAST}/counters/{counter}/alerts"
        for _ in range(200):  # distress: never rate limited
            response = session.post(url, json={"kind": "distress"}, timeout=10)
            assert response.status_code == 202
            with lock:
                accepted.append(response.json()["alert"]["id"])

    threads = [threading.Thread(target=terminal, args=(c,)) for c in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(accepted) == 1000
    eventually(lambda: r.hlen(keys.page_for_alert(EAST)) == 1000, timeout=60)
    ids = r.zrange(keys.pages_all(EAST), 0, -1)
    pages = [json.loads(raw) for raw in r.mget([keys.page(EAST, i) for i in ids])]
    folded = Counter(a for p in pages for a in p["details"]["alert_ids"])
    assert set(folded) == set(accepted) and set(folded.values()) == {1}, "each alert in exactly one page, once"
    assert sum(p["presses"] for p in pages) == 1000
    assert sorted(p["counter"] for p in pages) == sorted(counters), "one open page per counter: presses fold"
    announced = Counter(json.loads(f["data"])["page"]["id"]
                        for _, f in r.xrange(keys.stream(EAST, keys.DEVICE)) if f["type"] == "page")
    assert set(announced.values()) == {1} and len(announced) == 5
    # Pages come by the page-request stream: each alert was made into its page (created, or folded into the
    # counter's open page) once, and logged so, by the consumer that took its entry or by a sweeper; and each of
    # the three pager workers' consumers took a share.
    pager_workers = [w["name"] for w in running(r) if w["service"] == "pager"]
    assert len(pager_workers) == 3

    def logged() -> dict[str, str | None]:
        found = _deliveries(split_stack, set(accepted))
        return found if len(found) == len(accepted) else {}

    eventually(lambda: consumer.backlog(r, PAGE_REQUESTS)["pending"] == 0)
    made = eventually(logged)  # a worker logs a page just after its MULTI: give the last line a moment
    assert sorted(made) == sorted(accepted), "every alert's page was written once"
    by_consumer = Counter(who for who in made.values() if who)
    assert len(by_consumer) == 3 and all(n > 0 for n in by_consumer.values()), \
        f"all three took page requests: {by_consumer}, by sweepers: {sum(1 for c in made.values() if not c)}"
    assert set(by_consumer) <= set(pager_workers), "each consumer is one of the pager workers (by host and pid)"
    backlog = consumer.backlog(r, PAGE_REQUESTS)
    assert (backlog["length"], backlog["pending"]) == (0, 0), "every entry read, done and deleted"


def _deliveries(stack: Stack, alerts: set[str]) -> dict[str, str | None]:
    """Read the pager workers' logs: for each of these alerts that a line says was made into a page, the consumer
    that did it (None: a sweeper). An alert logged twice is an error."""
    made: dict[str, str | None] = {}
    for log in sorted(Path(stack.log_dir or ".").glob("pager-worker*.log")):
        for raw in log.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:  # a line of another sort, or the one a worker is writing now
                continue
            if not isinstance(line, dict):
                continue
            found = re.search(r" for alert (\S+) at counter ", line.get("message", ""))
            if line.get("logger") == "lobby.pager" and found and found.group(1) in alerts:
                assert found.group(1) not in made, f"alert {found.group(1)} made into a page twice"
                made[found.group(1)] = line.get("consumer")
    return made
