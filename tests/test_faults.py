"""Faults survived, with real processes, real signals and a real Redis: nothing accepted is ever lost.

These tests run their own Redis and their own stack (four branches, twenty counters) so that killing a
process here never disturbs the rest of the suite. Each records what it measured in
`var/reliability/<test>.json`; RELIABILITY.md publishes those figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
import requests

from services.domain import keys
from services.domain.branch import DEMO_CONFIG
from services.ops.redis_server import RedisServer, free_port
from services.ops.stack import Stack, answers_ready, descendants
from services.web import auth, idempotency
from tests import crash
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
                  config_path=config, log_dir=tmp_path_factory.mktemp("fault-logs"),
                  var_dir=tmp_path_factory.mktemp("fault-var")).start()
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
    crash.kill(fault_stack, "pager-worker")
    killed_after = sum(map(len, accepted.values()))
    for t in threads:
        t.join(60)
    assert failures == [], "every press is accepted while the pager worker is down"
    paged_before_restart = sum(len(_alerts_with_pages(fr, b)) for b in BRANCHES)
    crash.restart(fault_stack)
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

    crash.kill(fault_stack, "pager-web")
    crash.kill(fault_stack, "kiosk-web")
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

    crash.restart(fault_stack)
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

    crash.kill(fault_stack, "kiosk-web")
    crash.kill(fault_stack, "kiosk-worker")
    try:
        called = requests.post(f"{counter}/counters/vip/call-next", headers=vip, timeout=5)
        assert called.status_code == 200 and called.json()["ticket"]["number"] == "V001"
        paused = requests.post(f"{counter}/counters/vip/pause", headers=vip,
                               json={"reason": "vault_transfer", "expected_minutes": 10}, timeout=5)
        assert paused.status_code == 200
        eventually(lambda: any(json.loads(f["data"])["page"]["kind"] == "pause"
                               for _, f in fr.xrange(keys.stream(branch, keys.DEVICE))))
    finally:
        crash.restart(fault_stack)
    fault_stack.wait_ready(30)
    screen = eventually(lambda: (s := requests.get(f"{kiosk}/screen", timeout=5).json())["notices"] and s)
    assert screen["now_serving"][0]["number"] == "V001" and screen["notices"][0]["tickets"] == ["V002"]

    device = SSEClient(f"{pager}/pages/events", params={"token": device_token}).start()
    requests.post(f"{counter}/counters/vip/alerts", headers=vip, json={"kind": "help", "note": "before"}, timeout=5)
    last_seen = device.wait_for(lambda e: e.type == "page").id
    crash.kill(fault_stack, "pager-web")
    device.close()
    try:
        assert requests.post(f"{counter}/counters/vip/resume", headers=vip, timeout=5).status_code == 200
        for kind in ("distress", "ask_supervisor"):
            assert requests.post(f"{counter}/counters/vip/alerts", headers=vip, json={"kind": kind},
                                 timeout=5).status_code == 202
        eventually(lambda: len(fr.hgetall(keys.page_for_alert(branch))) == 5, timeout=15)
    finally:
        crash.restart(fault_stack)
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


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """Freeze Redis (SIGSTOP) for the block, as a stalled host or a long fork would; it takes what was sent after."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def _retry_until_done(url: str, headers: dict[str, str], body: dict, done: int, budget_s: float) -> tuple:
    """Send a request again with its Idempotency-Key, as a client does after a failure, until it is answered with
    `done`; return the answer and every status seen before it (None: no answer at all)."""
    seen: list[int | None] = []
    deadline = time.monotonic() + budget_s
    while True:
        try:
            answer = requests.post(url, headers=headers, json=body, timeout=5)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == done:
            return answer, seen
        seen.append(answer.status_code if answer is not None else None)
        assert answer is None or answer.status_code in (409, 503), answer.text
        assert time.monotonic() < deadline, f"still refused after {budget_s} s: {seen}"
        time.sleep(float(answer.headers.get("Retry-After", 0.5)) if answer is not None else 0.3)


def test_a_ticket_taken_while_redis_froze_is_issued_once_by_its_retry(fault_stack, fault_redis, fr):
    """Redis stops for 3 s while a kiosk takes a ticket: the tap fails fast, and its retry (same key) is answered
    within seconds, not locked out for a day, with one ticket."""
    url = f"{_api(fault_stack, 'kiosk', 'zhongnan')}/tickets"
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    with frozen(fault_redis):
        began = time.monotonic()
        first = requests.post(url, headers=headers, json={"category": "vip"}, timeout=10)
        failed_after_s = time.monotonic() - began
        time.sleep(max(0.0, 3 - failed_after_s))
    assert first.status_code == 503 and first.json()["error"]["code"] == "unavailable"
    resumed = time.monotonic()
    answer, seen = _retry_until_done(url, headers, {"category": "vip"}, 201, idempotency.PENDING_S + 5)
    waited_s = time.monotonic() - resumed
    assert answer.json()["ticket"]["number"] == "V001"
    day = answer.json()["ticket"]["issued_at"][:10]
    assert fr.get(keys.ticket_seq("zhongnan", day, "vip")) == "1", "one ticket issued, however often asked"
    record_reliability("idempotency_redis_frozen", {
        "freeze_s": 3, "first_answer": first.status_code, "first_answer_after_s": round(failed_after_s, 2),
        "retry_answered_after_s": round(waited_s, 2), "statuses_before": seen, "tickets_issued": 1,
    })


def test_presses_whose_web_worker_died_get_through_once_on_retry(fault_stack, fr):
    """A burst of presses, each with its key, and the counter's web worker SIGKILLed in the middle of it: the presses
    it held are retried with their keys and each gets through within seconds, written once."""
    token = auth.issue(fr, "zhongnan", auth.COUNTER, "2")
    url = f"{_api(fault_stack, 'counter', 'zhongnan')}/counters/2/alerts"
    body = {"kind": "distress"}  # never rate-limited, so a burst of any size is accepted
    master = fault_stack.child("counter-web").process
    assert master is not None
    pressed: list[dict[str, str]] = []
    for _ in range(5):  # until the kill catches presses in flight (nearly always the first time)
        presses = [{"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex} for _ in range(30)]
        pressed += presses
        start = threading.Barrier(len(presses) + 1)

        def press(headers: dict[str, str], start: threading.Barrier = start) -> None:
            start.wait()
            with contextlib.suppress(requests.RequestException):
                requests.post(url, headers=headers, json=body, timeout=10)

        threads = [threading.Thread(target=press, args=(h,)) for h in presses]
        for t in threads:
            t.start()
        start.wait()
        time.sleep(0.03)
        for pid in descendants(master.pid):
            os.kill(pid, signal.SIGKILL)
        for t in threads:
            t.join(15)
        slots = [fr.get(keys.idempotency("zhongnan", f"token:{token.split('.')[2]}", h["Idempotency-Key"]))
                 for h in presses]
        stuck = sum(1 for raw in slots if raw and json.loads(raw)["state"] == "pending")
        if stuck:
            break
        eventually(lambda: answers_ready(fault_stack.url("counter")), timeout=15)
    assert stuck, "the kill caught presses in flight"
    killed = time.monotonic()
    alert_ids, refused = {}, []
    for headers in pressed:
        answer, seen = _retry_until_done(url, headers, body, 202, idempotency.PENDING_S + 15)
        alert_ids[headers["Idempotency-Key"]] = answer.json()["alert"]["id"]
        refused += [s for s in seen if s == 409]
    slowest_s = time.monotonic() - killed
    assert len(set(alert_ids.values())) == len(pressed)
    stored = {k.rsplit(":", 1)[1] for k in fr.scan_iter(f"{keys.branch('zhongnan')}:alert:*")}
    assert stored == set(alert_ids.values()), "each press written once, its retries none more"
    for headers in presses[:3]:  # asked again: the same answer, stored
        again = requests.post(url, headers=headers, json=body, timeout=5)
        assert again.status_code == 202 and again.json()["alert"]["id"] == alert_ids[headers["Idempotency-Key"]]
    eventually(lambda: set(alert_ids.values()) <= set(fr.hkeys(keys.page_for_alert("zhongnan"))), timeout=15)
    record_reliability("idempotency_web_worker_sigkill", {
        "presses": len(pressed), "held_by_the_killed_worker": stuck, "retries_refused_in_progress": len(refused),
        "every_retry_answered_within_s": round(slowest_s, 2), "alerts_written": len(stored),
    })


@pytest.fixture(autouse=True)
def _stack_alive(request, fault_stack):
    """Leave every child running for the next test, whatever this one did."""
    yield
    crash.restart(fault_stack)
