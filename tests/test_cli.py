"""The `lobby` command: tokens for terminals and devices, and `lobby up` running the whole system."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from services.domain import contracts
from services.ops.redis_server import free_port
from services.web import hub
from tests.conftest import BRANCH, settle
from tests.sse import eventually

API = f"/api/v1/branches/{BRANCH}"


def lobby(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.ops.cli", *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


def on_stack(live) -> dict[str, str]:
    """The environment of a command run beside the session stack: its Redis."""
    return {"REDIS_URL": live.redis_url}


def test_tokens_issue_prints_only_the_token_and_revoke_works_at_once(live, r):
    env = on_stack(live)
    issued = lobby("tokens", "issue", "--branch", BRANCH, "--counter", "vip", env=env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n" and token.startswith(f"lby.{BRANCH}.")
    assert not any(token.split(".")[-1] in v for k in r.scan_iter("lobby:*:token:*") for v in r.hvals(k)), \
        "Redis keeps a hash, never the secret"
    url = f"{live.url('counter')}{API}/counters/vip"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200

    device = lobby("tokens", "issue", "--branch", BRANCH, "--device", "lobby-manager", env=env).stdout.strip()
    assert requests.get(f"{live.url('pager')}{API}/pages", headers={"Authorization": f"Bearer {device}"},
                        timeout=5).status_code == 200

    listed = lobby("tokens", "list", "--branch", BRANCH, env=env).stdout
    assert token.split(".")[2] in listed and token.split(".")[3] not in listed
    assert lobby("tokens", "revoke", "--branch", BRANCH, token, env=env).returncode == 0
    revoked = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert revoked.status_code == 401


def test_status_shows_queues_workers_and_open_pages(live, r, token, sse):
    headers = {"Authorization": f"Bearer {token('counter', '2')}"}
    terminal = sse(f"{live.url('counter')}{API}/counters/2/events", headers=headers)
    assert terminal.status == 200
    for kind in ("distress", "help"):
        assert requests.post(f"{live.url('counter')}{API}/counters/2/alerts", headers=headers, json={"kind": kind},
                             timeout=5).status_code == 202
    requests.post(f"{live.url('kiosk')}{API}/tickets", json={"category": "vip"}, timeout=5)
    settle()
    eventually(lambda: hub.by_service(r).get("counter", {}).get("clients"))  # said within a second of joining
    found = json.loads(lobby("status", "--json", env=on_stack(live)).stdout)
    assert [q["queue"] for q in found["queues"]] == ["kiosk", "pager"], "the screen's jobs, the archive's"
    assert all(q["failed"] == 0 for q in found["queues"])
    # Pages and their news come by streams: both alerts were read from them and are done with (deleted).
    assert [(s["stream"], s["group"], s["length"], s["lag"], s["pending"]) for s in found["streams"]] == [
        ("lobby:page-requests", "pager", 0, 0, 0), ("lobby:page-news", "counter", 0, 0, 0)]
    for stream in found["streams"]:
        assert stream["consumers"] and all(c["name"].startswith(stream["group"] + "-") for c in stream["consumers"])
    assert {w["service"] for w in found["workers"]} == {"kiosk", "counter", "pager"}, "the stack's workers"
    assert all(w["heartbeat_s_ago"] < 10 for w in found["workers"])
    zhongnan = next(b for b in found["branches"] if b["branch"] == BRANCH)
    assert zhongnan["open_pages"] == {"urgent": 1, "high": 1} and zhongnan["outbox"] == 0
    assert zhongnan["waiting"]["vip"] == 1 and zhongnan["counters"]["2"] == "open"
    states = {e["endpoint"]: e["state"] for e in zhongnan["endpoints"]}
    assert states["terminal:2"] == "live" and states["display:lobby"] == "unsupervised"
    assert states["device:lobby-manager"] == "unsupervised"
    assert zhongnan["archive"] == {"waiting_days": 0, "oldest_waiting": None, "oldest_age_days": 0,
                                   "closed_days_in_redis": 0}
    # The counter's processes say what they hold: the terminal's stream, read by one reader of one of them.
    counter = next(s for s in found["live"] if s["service"] == "counter")
    assert counter["clients"] >= 1 and counter["streams"] >= 1 and 1 <= counter["readers"] <= counter["processes"]
    roles = {c["role"]: c["connections"] for c in found["connections"]}
    assert roles.get("counter-web", 0) >= 1 and roles.get("pager-worker", 0) >= 1, roles
    text = lobby("status", env=on_stack(live)).stdout
    assert "WORKERS (3)" in text and "1 urgent, 1 high" in text and "lobby:page-news" in text
    assert re.search(r"counter\s+\d+\s+\d+\s+\d+\s+\d+", text) and "REDIS CONNECTIONS (" in text, text
    assert re.search(r"zhongnan\s+terminal:2\s+live\s+heard \d+ s ago", text), text
    assert re.search(r"zhongnan\s+every closed day archived; Redis holds 0 closed day", text), text
    down = lobby("status", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 2 and "cannot reach Redis" in down.stderr


def test_tokens_issue_refuses_unknown_names():
    for args in (["--counter", "9"], ["--device", "janitor"], ["--screen", "hall"]):
        result = lobby("tokens", "issue", "--branch", BRANCH, *args)
        assert result.returncode == 2 and result.stdout == "" and "unknown" in result.stderr
    assert lobby("tokens", "issue", "--branch", "nowhere", "--counter", "vip").returncode == 2


def test_lobby_up_runs_everything_with_its_own_redis_and_stops_on_sigterm(tmp_path):
    ports = {"KIOSK_PORT": free_port(), "COUNTER_PORT": free_port(), "PAGER_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    env.pop("REDIS_URL", None)
    redis_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "up", "--var", str(tmp_path / "var"), "--redis-port",
         str(redis_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        output = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            output.append(line)
            if "Ctrl-C" in line or not line:
                break
        text = "".join(output)
        assert f"redis://127.0.0.1:{redis_port}/0" in text
        vip_token = re.search(r"Counter vip .* Bearer (\S+)", text).group(1)
        device_token = re.search(r"Device lobby-manager .*token=(\S+)", text).group(1)
        kiosk = f"http://127.0.0.1:{ports['KIOSK_PORT']}"
        counter = f"http://127.0.0.1:{ports['COUNTER_PORT']}"
        pager = f"http://127.0.0.1:{ports['PAGER_PORT']}"
        assert requests.post(f"{kiosk}{API}/tickets", json={"category": "vip"}, timeout=5).status_code == 201
        paused = requests.post(f"{counter}{API}/counters/vip/pause", headers={"Authorization": f"Bearer {vip_token}"},
                               json={"reason": "vault_transfer", "expected_minutes": 15}, timeout=5)
        assert paused.status_code == 200

        def pages():
            return requests.get(f"{pager}{API}/pages", headers={"Authorization": f"Bearer {device_token}"},
                                timeout=5).json()["pages"]

        deadline = time.monotonic() + 10
        while not pages() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pages()[0]["details"]["vip_waiting"] == 1, "the pager worker started by lobby up made the page"
        assert (tmp_path / "var" / "redis").is_dir(), "the embedded Redis keeps its data under --var"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0
    for port in (*ports.values(), redis_port):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"something still listens on {port} after lobby up stopped")


@contextlib.contextmanager
def worker_process(service: str, redis_url: str, *, quiet: bool = False) -> Iterator[subprocess.Popen]:
    """Run `lobby worker <service>` on a Redis (its output on its stdout, as text, unless quiet); kill it at the end
    if it still runs."""
    streams = ({"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else
               {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True})
    worker = subprocess.Popen([sys.executable, "-m", "services.ops.cli", "worker", service],
                              env={**os.environ, "REDIS_URL": redis_url}, **streams)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.parametrize("service", ["kiosk", "counter", "pager"])
def test_an_idle_worker_stops_at_once_on_sigterm(redis_server, service):
    """A warm shutdown ends the worker, and its stream consumer with it; the reconnect loops must not take the stop
    for a lost Redis, and the worker's heartbeat goes with it."""
    import redis

    from services.domain import keys
    from services.runtime.worker import running

    with worker_process(service, redis_server.url) as worker:
        connection = redis.Redis.from_url(redis_server.url, decode_responses=True)
        name = f"{service}-{socket.gethostname()}-{worker.pid}"
        eventually(lambda: any(w["name"] == name for w in running(connection)), timeout=30)
        if service != "kiosk":  # its consumer is reading: the group knows it
            channel = next(c for c in contracts.CHANNELS if c.group == service)
            eventually(lambda: connection.exists(channel.key), timeout=10)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(5) == 0
        output = worker.stdout.read()
        assert "lost Redis" not in output
        if service != "kiosk":
            assert f"consumer {name} stopped" in output
        assert not connection.exists(keys.worker(name)), "its heartbeat went with it"


@pytest.mark.parametrize("service", ["kiosk", "counter", "pager"])
def test_a_worker_stopped_the_moment_it_says_it_is_up_stops_cleanly(redis_server, service):
    """From its first heartbeat on, a stop is a warm one, even before RQ has installed its own signal handlers."""
    import redis

    from services.domain import keys

    connection = redis.Redis.from_url(redis_server.url, decode_responses=True)
    for _ in range(3):
        with worker_process(service, redis_server.url, quiet=True) as worker:
            heartbeat = keys.worker(f"{service}-{socket.gethostname()}-{worker.pid}")
            eventually(lambda key=heartbeat: connection.exists(key), timeout=30, interval=0.001)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(10) == 0
            assert not connection.exists(heartbeat), "its heartbeat went with it"


@pytest.mark.parametrize("service", ["kiosk", "counter", "pager"])
def test_a_worker_waiting_for_a_lost_redis_stops_cleanly_on_sigterm(tmp_path, service):
    """Told to stop while it waits for Redis to come back, a worker ends at once and says it ended well."""
    from services.ops.redis_server import RedisServer

    server = RedisServer(tmp_path, appendonly=False).start()
    try:
        with worker_process(service, server.url) as worker:
            seen: list[str] = []
            reader = threading.Thread(target=lambda: seen.extend(worker.stdout), daemon=True)
            reader.start()
            eventually(lambda: any("lobby.worker" in line or "consumer" in line or "Listening" in line
                                   for line in seen), timeout=30)
            server.process.kill()  # Redis is lost
            server.process.wait()
            # Ours says "lost Redis"; RQ's own loop, which retries some losses before giving up, "could not
            # connect".
            eventually(lambda: any("lost Redis" in line or "could not connect" in line for line in seen), timeout=30)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(5) == 0, "".join(seen)
            reader.join(5)
            assert "StopRequested" not in "".join(seen), "the stop was not taken for a failure"
    finally:
        server.stop()


def test_a_stop_rq_raises_while_it_tears_down_ends_the_queue_loop_cleanly(redis_server, monkeypatch):
    """RQ quits when it loses Redis in its start-up upkeep, and tears down: it stops its scheduler and waits for
    it. A SIGTERM then meets RQ's own handler, which raises StopRequested out of that wait (the SIGTERM test
    above can meet it, when Redis goes during that upkeep); the worker is stopping, and must end well."""
    from rq.exceptions import StopRequested

    from services.runtime import worker as runtime_worker
    from services.runtime.settings import Context

    def stopped_in_teardown(self, **kwargs):
        raise StopRequested()

    monkeypatch.setattr(runtime_worker.LobbyWorker, "work", stopped_in_teardown)
    assert runtime_worker._work_queue(Context.from_env(), "kiosk", burst=False) is None


def test_a_process_forked_while_the_worker_waits_for_a_stop_takes_the_default_stop():
    """RQ forks its scheduler before installing the worker's own handlers: the child must not inherit the
    parent's way of noting a stop, or a stop sent to it then is lost and the parent waits for it forever."""
    from services.runtime import worker as runtime_worker

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    runtime_worker._stop_on_signals()
    try:
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the child says which handlers it has, then is stopped as RQ stops its scheduler
            os.close(read)
            state = (signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,
                     signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            os.write(write, repr(state).encode())
            os.close(write)
            time.sleep(30)
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as said:
            assert said.read() == "(True, True)"
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is runtime_worker._ask_to_stop, "the parent keeps its own"
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
