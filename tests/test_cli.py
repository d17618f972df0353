"""The `lobby` command: tokens for terminals and devices, and `lobby up` running the whole system."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from services.common.redis_server import free_port
from tests.conftest import BRANCH, settle
from tests.sse import eventually

API = f"/api/v1/branches/{BRANCH}"


def lobby(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, **(env or {})})


def test_tokens_issue_prints_only_the_token_and_revoke_works_at_once(live, r):
    issued = lobby("tokens", "issue", "--branch", BRANCH, "--counter", "vip")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n" and token.startswith(f"lby.{BRANCH}.")
    assert not any(token.split(".")[-1] in v for k in r.scan_iter("lobby:*:token:*") for v in r.hvals(k)), \
        "Redis keeps a hash, never the secret"
    url = f"{live.url('counter')}{API}/counters/vip"
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200

    device = lobby("tokens", "issue", "--branch", BRANCH, "--device", "lobby-manager").stdout.strip()
    assert requests.get(f"{live.url('pager')}{API}/pages", headers={"Authorization": f"Bearer {device}"},
                        timeout=5).status_code == 200

    listed = lobby("tokens", "list", "--branch", BRANCH).stdout
    assert token.split(".")[2] in listed and token.split(".")[3] not in listed
    assert lobby("tokens", "revoke", "--branch", BRANCH, token).returncode == 0
    revoked = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert revoked.status_code == 401


def test_status_shows_queues_workers_and_open_pages(live, r, token):
    headers = {"Authorization": f"Bearer {token('counter', '2')}"}
    for kind in ("distress", "help"):
        assert requests.post(f"{live.url('counter')}{API}/counters/2/alerts", headers=headers, json={"kind": kind},
                             timeout=5).status_code == 202
    requests.post(f"{live.url('kiosk')}{API}/tickets", json={"category": "vip"}, timeout=5)
    settle()
    found = json.loads(lobby("status", "--json").stdout)
    assert [q["queue"] for q in found["queues"]] == ["kiosk", "counter", "pager"]
    assert all(q["failed"] == 0 for q in found["queues"])
    # Pages come by the page-request stream: both alerts were read from it and are done with.
    (stream,) = found["page_requests"]
    assert (stream["stream"], stream["length"], stream["lag"], stream["pending"]) == ("lobby:page-requests", 2, 0, 0)
    assert stream["consumers"] and all(c["name"].startswith("pager-") for c in stream["consumers"])
    assert {q for w in found["workers"] for q in w["queues"]} >= {"kiosk", "counter", "pager"}, "the stack's workers"
    zhongnan = next(b for b in found["branches"] if b["branch"] == BRANCH)
    assert zhongnan["open_pages"] == {"urgent": 1, "high": 1} and zhongnan["outbox"] == 0
    assert zhongnan["waiting"]["vip"] == 1 and zhongnan["counters"]["2"] == "open"
    text = lobby("status").stdout
    assert "WORKERS" in text and "1 urgent, 1 high" in text and "PAGE REQUESTS" in text
    down = lobby("status", env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 2 and "cannot reach Redis" in down.stderr


def test_tokens_issue_refuses_unknown_names(live):
    for args in (["--counter", "9"], ["--device", "janitor"]):
        result = lobby("tokens", "issue", "--branch", BRANCH, *args)
        assert result.returncode == 2 and result.stdout == "" and "unknown" in result.stderr
    assert lobby("tokens", "issue", "--branch", "nowhere", "--counter", "vip").returncode == 2


def test_lobby_up_runs_everything_with_its_own_redis_and_stops_on_sigterm(tmp_path):
    ports = {"KIOSK_PORT": free_port(), "COUNTER_PORT": free_port(), "PAGER_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    env.pop("REDIS_URL", None)
    redis_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--var", str(tmp_path / "var"), "--redis-port", str(redis_port)],
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


@pytest.mark.parametrize("queue", ["kiosk", "pager"])
def test_an_idle_worker_stops_at_once_on_sigterm(redis_server, queue):
    """A warm shutdown ends the worker, and the pager's page-request consumer with it; the reconnect loops must
    not take the stop for a lost Redis."""
    import redis
    from rq import Worker

    worker = subprocess.Popen([sys.executable, "-m", "services.cli", "worker", queue], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ, "REDIS_URL": redis_server.url})
    try:
        connection = redis.Redis.from_url(redis_server.url)

        def idle() -> bool:
            return any(w.name.endswith(f"-{worker.pid}-0") and w.get_state() == "idle"
                       for w in Worker.all(connection=connection))

        eventually(idle, timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(5) == 0
        output = worker.stdout.read()
        assert "lost Redis" not in output
        if queue == "pager":
            assert f"page-request consumer pager-{socket.gethostname()}-{worker.pid} stopped" in output
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
