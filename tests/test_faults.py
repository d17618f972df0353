"""Faults survived, with real processes, real signals and a real Redis: nothing accepted is ever lost.

These tests run their own Redis and their own stack (four branches, twenty counters) so that killing a
process here never disturbs the rest of the suite. Each records what it measured in
`var/reliability/<test>.json`; RELIABILITY.md publishes those figures.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import requests

from services.common import auth, keys
from services.common.config import DEMO_CONFIG
from services.common.redis_server import RedisServer, free_port
from services.stack import Stack
from tests.conftest import record_reliability
from tests.sse import SSEClient, eventually

BRANCHES = ["zhongnan", "f1", "f2", "f3"]
COUNTERS = ["vip", "1", "2", "3", "4"]
KINDS = ["distress", "help", "ask_supervisor"]



@pytest.fixture(scope="module")
def fault_redis(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("fault-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_stack(fault_redis, tmp_path_factory) -> Iterator[Stack]:
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    config = tmp_path_factory.mktemp("fault-config") / "branches.toml"
    config.write_text("\n".join(demo.replace('id = "zhongnan"', f'id = "{b}"') for b in BRANCHES), encoding="utf-8")
    stack = Stack(ports={s: free_port() for s in ("kiosk", "counter", "pager")}, redis_url=fault_redis.url,
                  config_path=config, log_dir=tmp_path_factory.mktemp("fault-logs")).start()
    yield stack
    stack.stop()


@pytest.fixture
def fr(fault_stack, fault_redis) -> Iterator[redis.Redis]:
    """A client on the fault Redis, with the lobby keys and queues emptied before the test."""
    client = redis.Redis.from_url(fault_redis.url, decode_responses=True)
    for pattern in ("lobby:*", "rq:queue:*", "rq:scheduled:*"):
        for key in client.scan_iter(pattern, count=1000):
            if not key.endswith(":intermediate"):
                client.delete(key)
    yield client
    client.close()


def _api(stack: Stack, service: str, branch: str) -> str:
    return f"{stack.url(service)}/api/v1/branches/{branch}"


def _alerts_with_pages(r: redis.Redis, branch: str) -> dict[str, str]:
    return r.hgetall(keys.page_for_alert(branch))


def _pages(r: redis.Redis, branch: str) -> list[dict]:
    ids = r.zrange(keys.pages_all(branch), 0, -1)
    return [json.loads(raw) for raw in r.mget([keys.page(branch, i) for i in ids])] if ids else []


def test_pager_worker_killed_mid_burst_loses_and_doubles_nothing(fault_stack, fr):
    """200 alerts over 20 counters; the pager worker is SIGKILLed a quarter of the way in, then replaced."""
    tokens = {(b, c): auth.issue(fr, b, auth.COUNTER, c) for b in BRANCHES for c in COUNTERS}
    accepted: dict[str, list[str]] = {b: [] for b in BRANCHES}
    failures: list[str] = []
    lock = threading.Lock()
    quarter = threading.Event()

    def terminal(branch: str, counter: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens[branch, counter]}"
        for i in range(10):
            response = session.post(f"{_api(fault_stack, 'counter', branch)}/counters/{counter}/alerts",
                                    json={"kind": KINDS[i % 3], "note": f"press {i}"}, timeout=10)
            with lock:
                if response.status_code != 202:
                    failures.append(f"{response.status_code} {response.text}")
                    continue
                accepted[branch].append(response.json()["alert"]["id"])
                if sum(map(len, accepted.values())) >= 50:
                    quarter.set()
            time.sleep(0.01)

    threads = [threading.Thread(target=terminal, args=(b, c)) for b in BRANCHES for c in COUNTERS]
    for t in threads:
        t.start()
    assert quarter.wait(30)
    fault_stack.kill("pager-worker")
    killed_after = sum(map(len, accepted.values()))
    for t in threads:
        t.join(60)
    assert failures == [], "every press is accepted while the pager worker is down"
    paged_before_restart = sum(len(_alerts_with_pages(fr, b)) for b in BRANCHES)
    fault_stack.respawn("pager-worker")
    restarted = time.monotonic()

    def all_paged() -> bool:
        return all(set(accepted[b]) <= set(_alerts_with_pages(fr, b)) for b in BRANCHES)

    eventually(all_paged, timeout=30, interval=0.05)
    catch_up_s = time.monotonic() - restarted

    pages_made = 0
    for branch in BRANCHES:
        pages = _pages(fr, branch)
        pages_made += len(pages)
        folded = Counter(alert for page in pages for alert in page["details"]["alert_ids"])
        assert set(folded) == set(accepted[branch]), "every alert is in a page, and no page invents one"
        assert set(folded.values()) == {1}, "no alert is in two pages, or twice in one"
        assert sum(page["presses"] for page in pages) == len(accepted[branch])
        groups = Counter((page["counter"], page["kind"]) for page in pages)
        assert set(groups.values()) == {1}, "repeat presses of one call fold into one page"
        announced = Counter(json.loads(f["data"])["page"]["id"]
                            for _, f in fr.xrange(keys.stream(branch, keys.DEVICE)) if f["type"] == "page")
        assert set(announced.values()) == {1} and len(announced) == len(pages), "each page announced once"
    assert catch_up_s <= 10
    record_reliability("pager_worker_sigkill", {
        "alerts": 200, "accepted_before_kill": killed_after, "paged_before_restart": paged_before_restart,
        "pages": pages_made, "lost": 0, "doubled": 0, "last_page_after_restart_s": round(catch_up_s, 2),
    })


def _stream_ids(r: redis.Redis, stream: str, after: str) -> list[str]:
    return [i for i, _ in r.xrange(stream, min=f"({after}")]


def test_killed_web_services_replay_every_missed_event_once_on_reconnect(fault_stack, fr):
    branch = BRANCHES[1]
    device_token = auth.issue(fr, branch, auth.DEVICE, "lobby-manager")
    counter_token = {"Authorization": f"Bearer {auth.issue(fr, branch, auth.COUNTER, '3')}"}
    kiosk, counter = _api(fault_stack, "kiosk", branch), _api(fault_stack, "counter", branch)
    device_url, display_url = f"{_api(fault_stack, 'pager', branch)}/pages/events", f"{kiosk}/screen/events"
    device = SSEClient(device_url, params={"token": device_token}).start()
    display = SSEClient(display_url).start()
    for _ in range(3):
        requests.post(f"{kiosk}/tickets", json={"category": "personal"}, timeout=5)
    requests.post(f"{counter}/counters/3/alerts", headers=counter_token, json={"kind": "help"}, timeout=5)
    device.wait_for(lambda e: e.type == "page")
    display.wait_for(lambda e: e.type == "waiting" and e.data["waiting"]["personal"]["count"] == 3)
    last = {"device": device.events[-1].id, "display": display.events[-1].id}

    fault_stack.kill("pager-web")
    fault_stack.kill("kiosk-web")
    eventually(lambda: device.ended and display.ended, timeout=10)
    device.close()
    display.close()
    # While both are down: the counter calls twice and raises two more calls; the workers carry on.
    for _ in range(2):
        assert requests.post(f"{counter}/counters/3/call-next", headers=counter_token, timeout=5).status_code == 200
    for kind in ("distress", "ask_supervisor"):
        requests.post(f"{counter}/counters/3/alerts", headers=counter_token, json={"kind": kind}, timeout=5)
    streams = {"device": keys.stream(branch, keys.DEVICE), "display": keys.stream(branch, keys.SCREEN)}
    eventually(lambda: len(fr.hgetall(keys.page_for_alert(branch))) == 3)
    eventually(lambda: sum(f["type"] == "ticket_called" for _, f in fr.xrange(streams["display"])) == 2)
    missed = {name: _stream_ids(fr, stream, last[name]) for name, stream in streams.items()}

    fault_stack.respawn("pager-web")
    fault_stack.respawn("kiosk-web")
    fault_stack.wait_ready(30)
    again = {
        "device": SSEClient(device_url, params={"token": device_token}, headers={"Last-Event-ID": last["device"]}),
        "display": SSEClient(display_url, headers={"Last-Event-ID": last["display"]}),
    }
    figures = {}
    for name, client in again.items():
        client.start()
        eventually(lambda c=client, n=name: len(c.events) >= len(missed[n]))
        got = [e.id for e in client.events]
        client.close()
        assert got[: len(missed[name])] == missed[name], f"{name}: every missed event, in order"
        assert len(got) == len(set(got)), f"{name}: none twice"
        figures[name] = {"missed_while_down": len(missed[name]),
                         "replayed": len(got), "lost": 0, "doubled": 0}
    record_reliability("web_service_sigkill", figures)


def test_redis_crash_loses_nothing_accepted_and_apis_fail_fast_then_recover(fault_stack, fault_redis, fr):
    branch = BRANCHES[2]
    kiosk, counter, pager = (_api(fault_stack, s, branch) for s in ("kiosk", "counter", "pager"))
    vip = {"Authorization": f"Bearer {auth.issue(fr, branch, auth.COUNTER, 'vip')}"}
    device = {"Authorization": f"Bearer {auth.issue(fr, branch, auth.DEVICE, 'lobby-manager')}"}
    numbers = [requests.post(f"{kiosk}/tickets", json={"category": "vip"}, timeout=5).json()["ticket"]["number"]
               for _ in range(3)]
    assert requests.post(f"{counter}/counters/vip/alerts", headers=vip, json={"kind": "help"},
                         timeout=5).status_code == 202
    pages = eventually(lambda: requests.get(f"{pager}/pages", headers=device, timeout=5).json()["pages"])

    fault_redis.process.kill()  # a crash, not a clean shutdown: only the append-only file survives
    fault_redis.process.wait()
    timings = {}
    for name, method, url, headers, body in (
        ("take ticket", "post", f"{kiosk}/tickets", {}, {"category": "vip"}),
        ("read screen", "get", f"{kiosk}/screen", {}, None),
        ("call next", "post", f"{counter}/counters/vip/call-next", vip, None),
        ("raise alert", "post", f"{counter}/counters/vip/alerts", vip, {"kind": "distress"}),
        ("list pages", "get", f"{pager}/pages", device, None),
    ):
        started = time.monotonic()
        response = requests.request(method, url, headers=headers, json=body, timeout=10)
        timings[name] = round(time.monotonic() - started, 3)
        assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable", name
        assert timings[name] < 2.0, name
    for service in ("kiosk", "counter", "pager"):
        assert requests.get(f"{fault_stack.url(service)}/readyz", timeout=5).status_code == 503

    fault_redis.start()  # the same port and directory: it loads the append-only file
    for service in ("kiosk", "counter", "pager"):
        eventually(lambda s=service: requests.get(f"{fault_stack.url(s)}/readyz", timeout=5).status_code == 200)
    survived = [requests.get(f"{kiosk}/tickets/{n}", timeout=5).json()["ticket"]["number"] for n in numbers]
    assert survived == numbers, "tickets accepted before the crash are there after it"
    after = requests.get(f"{pager}/pages", headers=device, timeout=5).json()["pages"]
    assert [p["id"] for p in after] == [p["id"] for p in pages], "and so are pages"
    # Everything recovers without restarting a service: take, call, page.
    assert requests.post(f"{kiosk}/tickets", json={"category": "vip"}, timeout=5).status_code == 201
    assert requests.post(f"{counter}/counters/vip/call-next", headers=vip, timeout=5).json()["ticket"]["number"] \
        == numbers[0]
    alert = requests.post(f"{counter}/counters/vip/alerts", headers=vip, json={"kind": "distress"}, timeout=5)
    assert alert.status_code == 202
    eventually(lambda: any(p["kind"] == "distress" for p in requests.get(
        f"{pager}/pages", headers=device, timeout=5).json()["pages"]), timeout=15)
    assert [c.name for c in fault_stack.children if c.process.poll() is not None] == [], "no process restarted"
    record_reliability("redis_crash", {"tickets_before": 3, "tickets_after": len(survived), "pages_before": len(pages),
                           "pages_after": len(after), "lost": 0, "seconds_to_503": timings})


def test_counters_work_without_the_kiosk_and_pages_wait_for_the_pager_web(fault_stack, fr):
    branch = BRANCHES[3]
    kiosk, counter, pager = (_api(fault_stack, s, branch) for s in ("kiosk", "counter", "pager"))
    vip = {"Authorization": f"Bearer {auth.issue(fr, branch, auth.COUNTER, 'vip')}"}
    device_token = auth.issue(fr, branch, auth.DEVICE, "lobby-manager")
    for _ in range(2):
        requests.post(f"{kiosk}/tickets", json={"category": "vip"}, timeout=5)

    fault_stack.kill("kiosk-web")
    fault_stack.kill("kiosk-worker")
    try:
        called = requests.post(f"{counter}/counters/vip/call-next", headers=vip, timeout=5)
        assert called.status_code == 200 and called.json()["ticket"]["number"] == "V001"
        paused = requests.post(f"{counter}/counters/vip/pause", headers=vip,
                               json={"reason": "vault_transfer", "expected_minutes": 10}, timeout=5)
        assert paused.status_code == 200
        eventually(lambda: any(json.loads(f["data"])["page"]["kind"] == "pause"
                               for _, f in fr.xrange(keys.stream(branch, keys.DEVICE))))
    finally:
        fault_stack.respawn("kiosk-web")
        fault_stack.respawn("kiosk-worker")
    fault_stack.wait_ready(30)
    screen = eventually(lambda: (s := requests.get(f"{kiosk}/screen", timeout=5).json())["notices"] and s)
    assert screen["now_serving"][0]["number"] == "V001" and screen["notices"][0]["tickets"] == ["V002"]

    device = SSEClient(f"{pager}/pages/events", params={"token": device_token}).start()
    requests.post(f"{counter}/counters/vip/alerts", headers=vip, json={"kind": "help", "note": "before"}, timeout=5)
    last_seen = device.wait_for(lambda e: e.type == "page").id
    fault_stack.kill("pager-web")
    device.close()
    try:
        assert requests.post(f"{counter}/counters/vip/resume", headers=vip, timeout=5).status_code == 200
        for kind in ("distress", "ask_supervisor"):
            assert requests.post(f"{counter}/counters/vip/alerts", headers=vip, json={"kind": kind},
                                 timeout=5).status_code == 202
        eventually(lambda: len(fr.hgetall(keys.page_for_alert(branch))) == 5, timeout=15)
    finally:
        fault_stack.respawn("pager-web")
    fault_stack.wait_ready(30)
    device = SSEClient(f"{pager}/pages/events", params={"token": device_token},
                       headers={"Last-Event-ID": last_seen}).start()
    eventually(lambda: len(device.of_type("page")) >= 3)
    kinds = [e.data["page"]["kind"] for e in device.of_type("page")]
    device.close()
    assert kinds == ["resume", "distress", "ask_supervisor"], "what happened while it was down, in order"
    listed = requests.get(f"{pager}/pages", params={"status": "all"},
                          headers={"Authorization": f"Bearer {device_token}"}, timeout=5).json()["pages"]
    assert sorted(p["kind"] for p in listed) == ["ask_supervisor", "distress", "help", "pause", "resume"]
    record_reliability("service_stopped", {
        "kiosk_down": {"call_next": "200", "pause_paged": True, "screen_caught_up": True},
        "pager_web_down": {"alerts_accepted_while_down": 3, "pages_replayed_after": len(kinds), "lost": 0},
    })


@pytest.fixture(autouse=True)
def _stack_alive(request, fault_stack):
    """Leave every child running for the next test, whatever this one did."""
    yield
    for child in fault_stack.children:
        if child.process is None or child.process.poll() is not None:
            fault_stack.respawn(child.name)
