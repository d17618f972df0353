"""The whole system as child processes: Redis (when none is given), three web services, three workers.

`lobby up` runs it in the foreground; the end-to-end tests run it against their own Redis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from services.common.contracts import QUEUES
from services.common.redis_server import RedisServer

log = logging.getLogger("lobby.stack")
SERVICES = ("kiosk", "counter", "pager")
# Threaded workers: a Server-Sent Events client holds one thread (and one Redis connection) for as long as it
# listens. 1,024 threads let one service carry a region's screens and devices (BENCHMARKS.md, B4: 1,000
# clients over 50 branches, delivery p99 in tens of ms); threads start only as clients come, so an idle
# service costs no more than with 64. gthread also caps open connections (default 1,000): keep-alive
# clients waiting for their next request count too, so allow twice the threads.
GUNICORN_THREADS = 1024
GUNICORN_WORKER_CONNECTIONS = 2048


def gunicorn_command(app: str, bind: str) -> list[str]:
    """Return the command that serves one app the way every service is served (the benchmarks reuse it)."""
    return [
        sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--threads", str(GUNICORN_THREADS),
        "--worker-connections", str(GUNICORN_WORKER_CONNECTIONS), "--workers", "1", "--bind", bind,
        "--graceful-timeout", "3", "--timeout", "60", "--log-level", "warning", app,
    ]


def answers_ready(base_url: str) -> bool:
    """Say whether a web service at base_url answers its /readyz with 200 (Redis reachable)."""
    try:
        return requests.get(f"{base_url}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def descendants(pid: int) -> list[int]:
    """Return the pids below a process (Linux /proc), such as gunicorn's workers under its master."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    # Environment this child has apart from the stack's, e.g. the REDIS_URL of the shard a worker serves.
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    """Start and stop every process of the system; restart any that dies while it runs."""

    ports: dict[str, int]
    redis_url: str | None = None
    config_path: Path | None = None
    host: str = "127.0.0.1"
    var_dir: Path = Path("var")
    redis_port: int | None = None
    log_dir: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Workers per queue on each Redis (e.g. {"pager": 3}); one when not given.
    workers: dict[str, int] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    redis: RedisServer | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["REDIS_URL"] = self.redis_url or ""
        if self.config_path:
            env["LOBBY_CONFIG"] = str(self.config_path)
        for name, port in self.ports.items():
            env[f"{name.upper()}_PORT"] = str(port)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.ports[service]}"

    def start(self, timeout_s: float = 30.0) -> Stack:
        if not self.redis_url:
            self.redis = RedisServer(self.var_dir / "redis", self.redis_port).start()
            self.redis_url = self.redis.url
        for service in SERVICES:
            self.children.append(Child(f"{service}-web", gunicorn_command(
                f"services.{service}.app:create_app()", f"{self.host}:{self.ports[service]}")))
        # Every Redis some branch lives on gets its own workers: a worker serves the queues of one Redis.
        for shard, url in enumerate(self.redis_urls()):
            for queue in QUEUES:
                for n in range(self.workers.get(queue, 1)):
                    name = f"{queue}-worker" + (f"-{n + 1}" if n else "") + (f"@{shard}" if shard else "")
                    self.children.append(Child(name, [sys.executable, "-m", "services.cli", "worker", queue],
                                               env={"REDIS_URL": url}))
        for child in self.children:
            self._spawn(child)
        self.wait_ready(timeout_s)
        return self

    def redis_urls(self) -> list[str]:
        """Return the default Redis, then every other one a branch of the config lives on."""
        assert self.redis_url
        urls = [self.redis_url]
        if self.config_path:
            from services.common.config import by_redis, load_branches

            urls += sorted(set(by_redis(load_branches(self.config_path).values(), self.redis_url)) - set(urls))
        return urls

    def _spawn(self, child: Child) -> None:
        out = None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - the child owns it
        child.process = subprocess.Popen(child.args, env={**self.env(), **child.env}, stdout=out,
                                         stderr=subprocess.STDOUT if out else None)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for service in SERVICES:
            while True:
                if answers_ready(self.url(service)):
                    break
                died = [c.name for c in self.children if c.process and c.process.poll() is not None]
                if died or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{service} did not become ready on port {self.ports[service]}"
                                       + (f"; {', '.join(died)} exited" if died else ""))
                time.sleep(0.1)

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def kill(self, name: str) -> None:
        """Kill one child and its own children with SIGKILL, as a crash would; it stays down until respawn."""
        process = self.child(name).process
        if process is None or process.poll() is not None:
            return
        family = [process.pid, *descendants(process.pid)]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def respawn(self, name: str) -> None:
        """Start a child that was killed again."""
        self._spawn(self.child(name))

    def supervise_once(self) -> None:
        """Restart children that died (a crashed worker must not leave pages unsent)."""
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                log.warning("%s exited with %s; restarting", child.name, child.process.returncode)
                child.restarts += 1
                self._spawn(child)

    def stop(self) -> None:
        for child in self.children:
            if child.process and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + 10
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()
        if self.redis:
            self.redis.stop()
            self.redis = None
