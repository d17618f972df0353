"""The whole system as child processes: Redis (when none is given), three web services, three workers.

`lobby up` runs it in the foreground; the end-to-end tests run it against their own Redis.

Every child runs in a process group of its own and receives SIGTERM when the stack's process dies, however it
dies, and carries the stack's run id in its environment (RUN_ENV), which its own children inherit. `lobby up`
also records itself, its run id and its children in a pid file: the next `lobby up` on the same folder refuses
to start while that one runs, and stops whatever of it is left if it was killed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import redis
import requests
from sqlalchemy.exc import SQLAlchemyError

from services.domain.branch import Branch, by_redis, load_branches
from services.domain.contracts import CHANNELS, QUEUES, SERVICES
from services.ops.redis_server import (
    PortTaken,
    RedisServer,
    StartError,
    carrying,
    die_with_parent,
    holder,
    listeners,
    port_taken,
    started,
    started_at,
)
from services.records import database

log = logging.getLogger("lobby.stack")
def gunicorn_command(app: str, bind: str) -> list[str]:
    """Return the command that serves one app the way every service is served (the benchmarks reuse it)."""
    # Its settings (gevent workers, several per service, JSON error answers) are in services/web/serving.py.
    return [sys.executable, "-m", "gunicorn", "--config", "python:services.web.serving", "--bind", bind, app]


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


class AlreadyRunning(StartError):
    """Another `lobby up` runs on the same folder."""

    def __init__(self, pid: int, pid_file: Path):
        super().__init__(f"lobby up is already running here (pid {pid}, recorded in {pid_file}); "
                         f"stop it first (Ctrl-C in its terminal, or kill {pid})")
        self.pid = pid


# How long processes a killed stack left get to stop on SIGTERM before SIGKILL.
ORPHANS_TERM_S = 10.0
# The variable that marks every process of one stack (and their children) with the stack's run id.
RUN_ENV = "LOBBY_STACK_RUN"


def stop_processes(pids: list[int], term_s: float = ORPHANS_TERM_S) -> None:
    """Stop processes: SIGTERM, then SIGKILL for those still there after term_s; return once they are gone."""
    identity = {pid: started(pid) for pid in pids}

    def alive() -> list[int]:
        return [pid for pid, ticks in identity.items() if ticks is not None and started(pid) == ticks]

    for sig, wait_s in ((signal.SIGTERM, term_s), (signal.SIGKILL, 5.0)):
        for pid in alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive():
            return


def read_pid_file(path: Path) -> dict[str, Any] | None:
    """Return what a pid file records ({"pid", "started", "run", "children": [{"name", "pid", "started"}]}), or None."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def stop_orphans(record: dict[str, Any]) -> list[int]:
    """Stop whatever a dead stack's pid file names that still runs; return the pids stopped.

    A process is the stack's when it carries the stack's run id, or when it is a recorded child with the same
    start time (a pid alone may have been given to some other process since).
    """
    found = set(carrying(f"{RUN_ENV}={record['run']}")) if isinstance(record.get("run"), str) else set()
    for child in record.get("children", []):
        pid, ticks = child.get("pid"), child.get("started")
        if isinstance(pid, int) and isinstance(ticks, int) and started(pid) == ticks:
            found.add(pid)
    found.discard(os.getpid())
    if found:
        log.warning("stopping %d processes a killed lobby up (pid %s) left running: %s", len(found),
                    record["pid"], ", ".join(map(str, sorted(found))))
        stop_processes(sorted(found))
    return sorted(found)


def _runs_since(pid: int, moment: datetime | None) -> bool:
    """Say whether a living process with this pid had started by `moment` (so it may be the one that wrote it)."""
    began = started_at(pid)
    if began is None or moment is None:
        return began is not None
    when = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return began <= when.timestamp() + 2  # /proc gives the start to the clock tick, boot time to the second


def forget_dead_workers(connection: redis.Redis) -> list[str]:
    """Unregister the workers, and release the RQ scheduler locks, of processes on this host that are gone.

    A stack killed at once leaves its RQ workers registered for RQ's worker TTL (eight minutes), its schedulers'
    locks for a minute and its workers' heartbeats for seconds: meanwhile the next stack would show two workers
    per service and schedule nothing.
    Returns the names forgotten.
    """
    from rq import Worker
    from rq.scheduler import SCHEDULER_KEY_TEMPLATE
    from rq.utils import utcparse

    host = socket.gethostname()
    forgotten = []
    for worker in Worker.all(connection=connection):
        if worker.hostname == host and not _runs_since(worker.pid, worker.last_heartbeat):
            worker.register_death()
            forgotten.append(worker.name)
    for lock in connection.scan_iter("rq:scheduler-lock:*"):
        owner = connection.get(lock)  # the scheduler's name; its hash says where it runs
        raw = connection.hgetall(SCHEDULER_KEY_TEMPLATE % owner.decode()) if owner else {}
        info = {k.decode(): v.decode() for k, v in raw.items()}
        if info.get("hostname") == host and info.get("pid", "").isdigit():
            beat = info.get("last_heartbeat")
            moment = utcparse(beat) if beat else None
            if not _runs_since(int(info["pid"]), moment):
                connection.delete(lock)
                forgotten.append(f"scheduler {info['pid']}")
    from services.domain import keys

    for key in connection.scan_iter(keys.worker("*")):
        beat = {k.decode(): v.decode() for k, v in connection.hgetall(key).items()}
        if beat.get("host") == host and beat.get("pid", "").isdigit() and not started(int(beat["pid"])):
            connection.delete(key)  # a heartbeat of a worker gone: it would lapse by itself within seconds
            forgotten.append(beat.get("name", key.decode()))
    if forgotten:
        log.info("forgot what gone processes left registered in Redis: %s", ", ".join(forgotten))
    return forgotten


@dataclass
class Child:
    name: str
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    # Environment this child has apart from the stack's, e.g. the REDIS_URL of the shard a worker serves.
    env: dict[str, str] = field(default_factory=dict)
    # When the running process started (clock ticks after boot): with its pid, it names that process.
    started: int | None = None


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
    # Workers per service on each Redis (e.g. {"pager": 3}); one when not given.
    workers: dict[str, int] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    redis: RedisServer | None = None
    # Where this stack records its own pid and its children's (`lobby up`: <var>/lobby.pid); None for none.
    pid_file: Path | None = None
    # Marks this stack's processes (RUN_ENV), so that what one of them leaves behind is found and stopped.
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The records database (DATABASE_URL); None: a SQLite file under var_dir, made when the stack starts.
    database_url: str | None = None

    def __post_init__(self) -> None:
        # Absolute, so that no child (Redis changes into its --dir) reads them against another folder.
        self.var_dir = Path(self.var_dir).resolve()
        self.log_dir = Path(self.log_dir).resolve() if self.log_dir else None
        self.pid_file = Path(self.pid_file).resolve() if self.pid_file else None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["REDIS_URL"] = self.redis_url or ""
        env["DATABASE_URL"] = self.database_url or ""
        if self.config_path:
            env["LOBBY_CONFIG"] = str(self.config_path)
        for name, port in self.ports.items():
            env[f"{name.upper()}_PORT"] = str(port)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[RUN_ENV] = self.run
        return env

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.ports[service]}"

    def start(self, timeout_s: float = 30.0) -> Stack:
        """Start every process and return once the web services answer; stop what started if one fails.

        Raises AlreadyRunning when the pid file names a running stack, PortTaken when a port is held by another
        process, StartError when something does not come up.
        """
        try:
            if self.pid_file:
                self._claim_pid_file()  # first: what a killed stack left may hold the ports
            self._check_ports()
            self._record()
            if not self.redis_url:
                self.redis = RedisServer(self.var_dir / "redis", self.redis_port, env={RUN_ENV: self.run}).start()
                self.redis_url = self.redis.url
                self._record()
                connection = redis.Redis.from_url(self.redis_url)
                try:
                    forget_dead_workers(connection)
                finally:
                    connection.close()
            self._migrate()
            for service in SERVICES:
                self.children.append(Child(f"{service}-web", gunicorn_command(
                    f"services.{service}.app:create_app()", f"{self.host}:{self.ports[service]}")))
            # Every Redis some branch lives on gets its own workers: a worker serves the queues of one Redis.
            for shard, url in enumerate(self.redis_urls()):
                for service in SERVICES:
                    for n in range(self.workers.get(service, 1)):
                        name = f"{service}-worker" + (f"-{n + 1}" if n else "") + (f"@{shard}" if shard else "")
                        self.children.append(Child(name, [sys.executable, "-m", "services.ops.cli", "worker", service],
                                                   env={"REDIS_URL": url}))
            for child in self.children:
                self._spawn(child)
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _migrate(self) -> None:
        """Bring the records database to the tables the services read (a SQLite file under var_dir by default)."""
        self.database_url = self.database_url or database.sqlite_url(self.var_dir / "lobby.db")
        db = database.connect(self.database_url)
        try:
            database.migrate(db)
        except SQLAlchemyError as exc:
            raise StartError(f"the records database did not migrate ({db.url.render_as_string()}): {exc}") from exc
        finally:
            db.dispose()

    def _claim_pid_file(self) -> None:
        """Refuse to start beside a running stack recorded in the pid file; stop what a dead one left."""
        assert self.pid_file
        record = read_pid_file(self.pid_file)
        if record and record["pid"] != os.getpid():
            if record.get("started") is not None and started(record["pid"]) == record.get("started"):
                raise AlreadyRunning(record["pid"], self.pid_file)
            stop_orphans(record)

    def _record(self) -> None:
        """Write the pid file: this process and every child running now (whole, or not at all)."""
        if not self.pid_file:
            return
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        children = [{"name": c.name, "pid": c.process.pid, "started": c.started}
                    for c in self.children if c.process and c.started is not None]
        if self.redis and self.redis.process:
            children.append({"name": "redis", "pid": self.redis.process.pid,
                             "started": started(self.redis.process.pid)})
        partial = self.pid_file.with_name(self.pid_file.name + ".new")
        partial.write_text(json.dumps({"pid": os.getpid(), "started": started(os.getpid()), "run": self.run,
                                       "children": children}), encoding="utf-8")
        partial.replace(self.pid_file)

    def _check_ports(self) -> None:
        """Raise PortTaken for the first port the stack must listen on that another process holds."""
        for service in SERVICES:
            if port_taken(self.host, self.ports[service]):
                raise PortTaken(self.ports[service], holder(self.ports[service]), role=service)
        if not self.redis_url and self.redis_port and port_taken("127.0.0.1", self.redis_port):
            raise PortTaken(self.redis_port, holder(self.redis_port))

    @cached_property
    def branches(self) -> dict[str, Branch]:
        """Return the branches of the stack's branch file (read once)."""
        return load_branches(self.config_path) if self.config_path else {}

    def redis_urls(self) -> list[str]:
        """Return the default Redis, then every other one a branch of the config lives on."""
        assert self.redis_url
        return [self.redis_url, *sorted(set(by_redis(self.branches.values(), self.redis_url)) - {self.redis_url})]

    def backlog(self) -> int:
        """Count the work the stack's workers have not finished, on every Redis it runs on: RQ jobs queued, being
        handed over or running, stream entries (page requests, page news) not done, lobby screens waiting for a
        redraw, and alerts in an outbox."""
        from rq.registry import StartedJobRegistry

        from services.domain import keys
        from services.runtime import messages

        branches = by_redis(self.branches.values(), self.redis_url or "")
        busy = 0
        for url in self.redis_urls():
            raw, r = self._clients(url)
            for name in QUEUES:
                queue = messages.queue(name, raw)
                busy += queue.count + raw.llen(f"{queue.key}:intermediate") + StartedJobRegistry(queue=queue).count
            busy += sum(r.xlen(channel.key) for channel in CHANNELS)
            busy += r.scard(keys.screens_stale())
            busy += sum(r.zcard(keys.outbox_times(b.id)) for b in branches.get(url, []))
        return busy

    def _clients(self, url: str) -> tuple[redis.Redis, redis.Redis]:
        """Return the stack's own clients of a Redis (bytes replies for RQ, str for the rest), made once."""
        made = self.__dict__.setdefault("_made_clients", {})
        if url not in made:
            made[url] = (redis.Redis.from_url(url), redis.Redis.from_url(url, decode_responses=True))
        return made[url]

    def settle(self, timeout_s: float = 10.0) -> bool:
        """Wait until the workers have finished everything they were given (no backlog, three looks in a row, 50 ms
        apart); say whether they did within timeout_s. The tests and the benchmarks wait with this."""
        deadline = time.monotonic() + timeout_s
        idle = 0
        while idle < 3:
            idle = idle + 1 if self.backlog() == 0 else 0
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _spawn(self, child: Child) -> None:
        out = None
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{child.name}.log", "ab")  # noqa: SIM115 - the child owns it
        # A process group of its own (gunicorn's workers, RQ's scheduler join it): the stack stops the children
        # in order, and the next `lobby up` finds the whole family of a child by its group.
        child.process = subprocess.Popen(child.args, env={**self.env(), **child.env}, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT if out else None, process_group=0,
                                         preexec_fn=die_with_parent())
        child.started = started(child.process.pid)
        self._record()

    def wait_ready(self, timeout_s: float) -> None:
        """Return once every web service answers its /readyz from our own gunicorn; stop the stack if one does not."""
        deadline = time.monotonic() + timeout_s
        for service in SERVICES:
            while True:
                if answers_ready(self.url(service)) and self._listens(service):
                    break
                died = [c.name for c in self.children if c.process and c.process.poll() is not None]
                if died or time.monotonic() > deadline:
                    self.stop()
                    raise StartError(f"{service} did not become ready on port {self.ports[service]}"
                                     + (f"; {', '.join(died)} exited" if died else ""))
                time.sleep(0.1)

    def _listens(self, service: str) -> bool:
        """Say whether the socket listening on a service's port is our gunicorn's (so its /readyz is ours)."""
        process = self.child(f"{service}-web").process
        if process is None or not Path("/proc/net/tcp").exists():
            return process is not None
        return bool(listeners(self.ports[service], among=[process.pid, *descendants(process.pid)]))

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def supervise_once(self) -> None:
        """Restart children that died (a crashed worker must not leave pages unsent)."""
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                log.warning("%s exited with %s; restarting", child.name, child.process.returncode)
                child.restarts += 1
                self._spawn(child)

    def stop(self) -> None:
        """Stop every child, then Redis, then forget the pid file; safe to call more than once."""
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
        # What a child left behind when it went (say, the RQ scheduler of a worker that was killed).
        left = carrying(f"{RUN_ENV}={self.run}")
        if left:
            stop_processes(left, term_s=5.0)
        if self.pid_file:
            record = read_pid_file(self.pid_file)
            if record and record["pid"] == os.getpid():
                self.pid_file.unlink(missing_ok=True)
