"""Driving a running stack: its branches and tokens, the load processes the benchmarks spawn and collect, waiting
for the workers, the hello-world server, and what the stack takes of the machine."""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import requests

from bench import clients
from bench.machine import cpu_s, pss_kib, rss_kib
from bench.plan import BRANCH_ID, ESCALATE_BRANCH, REPEAT_BRANCH, Plan
from services.domain.branch import Branch, load_branches
from services.ops.redis_server import free_port
from services.ops.stack import Stack, answers_ready, gunicorn_command
from services.web import auth

# bench/ is not installed: the hello-world server imports bench.hello from the folder that holds bench/.
ROOT = Path(__file__).resolve().parent.parent


class Driver:
    """One benchmark run's hold on a running stack: its branches, their tokens, and the load processes."""

    def __init__(self, stack: Stack, plan: Plan, config: Path, log: Callable[[str], None]):
        self.stack, self.plan, self.log = stack, plan, log
        assert stack.redis_url
        self.redis_url = stack.redis_url
        self.r = redis.Redis.from_url(stack.redis_url, decode_responses=True)
        all_branches = load_branches(config)
        self.branches: list[Branch] = [all_branches[BRANCH_ID.format(i)] for i in range(plan.branches)]
        self.timer_branches = [all_branches[ESCALATE_BRANCH], all_branches[REPEAT_BRANCH]]
        self.counter_tokens: dict[tuple[str, str], str] = {}
        self.device_tokens: dict[str, list[str]] = {}
        for branch in [*self.branches, *self.timer_branches]:
            for counter in branch.counters:
                self.counter_tokens[branch.id, counter.id] = auth.issue(self.r, branch.id, auth.COUNTER, counter.id)
            self.device_tokens[branch.id] = [auth.issue(self.r, branch.id, auth.DEVICE, m.id)
                                             for m in branch.managers]
        self.ctx = multiprocessing.get_context("spawn")

    # Load processes -------------------------------------------------------------------------------

    def spawn(self, target: Callable[..., None], *args: Any) -> Any:
        """Start a load process (multiprocessing, spawn) running target(*args)."""
        process = self.ctx.Process(target=target, args=args, daemon=True)
        process.start()
        return process

    def collect(self, queue: Any, process: Any, timeout_s: float = 600) -> Any:
        """Return the one result a load process puts on its queue, once it has; then let it exit."""
        try:
            return queue.get(timeout=timeout_s)
        finally:
            process.join(10)

    def listen(self, urls: list[str], mode: str, processes: int = 1) -> tuple[Any, Any, list[Any]]:
        """Start listener processes on these streams; return (stop, queue, processes) once all are connected."""
        stop, queue = self.ctx.Event(), self.ctx.Queue()
        running = []
        for n in range(processes):
            ready = self.ctx.Event()
            running.append(self.spawn(clients.run_listener, urls[n::processes], mode, ready, stop, queue))
            if not ready.wait(120):
                raise RuntimeError("listeners did not connect")
        time.sleep(0.2)
        return stop, queue, running

    def stop_listening(self, stop: Any, queue: Any, running: list[Any]) -> list[dict[str, Any]]:
        """Stop the listeners; return what each heard (clients.run_listener)."""
        stop.set()
        return [self.collect(queue, p) for p in running]

    def press(self, base: str, presses: list[dict[str, Any]], rate: float, concurrency: int = 8) -> dict[str, Any]:
        """Send these requests from a load process at an even rate; return what each got (clients.send_paced)."""
        queue = self.ctx.Queue()
        process = self.spawn(clients.run_presses, base, presses, rate, concurrency, queue)
        return self.collect(queue, process)

    def load(self, base: str, paths: list[str], body: Any, seconds: float, max_requests: int | None,
             method: str = "POST") -> dict[str, Any]:
        """Keep the plan's B3 clients busy on these paths from a load process (closed loop); return the counts."""
        queue = self.ctx.Queue()
        process = self.spawn(clients.run_load, base, method, paths, body, self.plan.b3_clients, seconds,
                             max_requests, queue)
        return self.collect(queue, process)

    def admin(self, base: str, requests_: list[dict[str, Any]]) -> dict[str, Any]:
        """Send untimed requests (setup and cleanup) from this process, 8 at a time."""
        return asyncio.run(clients.send_paced(base, requests_, 10_000, 8))

    # The stack ------------------------------------------------------------------------------------

    def settle(self, timeout_s: float = 60) -> None:
        """Wait until the workers have finished everything they were given (Stack.settle, as the tests wait); say
        so in the log if they have not within timeout_s, and go on."""
        if not self.stack.settle(timeout_s):
            self.log(f"  (workers still busy after {timeout_s:.0f} s: {self.stack.backlog()} left)")

    def url(self, service: str) -> str:
        return self.stack.url(service)

    def device_url(self, branch_id: str, n: int = 0) -> str:
        """Return the page stream of a branch's n-th manager's device (round the managers)."""
        tokens = self.device_tokens[branch_id]
        return f"{self.url('pager')}/api/v1/branches/{branch_id}/pages/events?token={tokens[n % len(tokens)]}"

    def screen_url(self, branch_id: str) -> str:
        """Return the stream of a branch's lobby display."""
        return f"{self.url('kiosk')}/api/v1/branches/{branch_id}/screen/events"

    def alert(self, branch_id: str, counter_id: str, kind: str = "distress") -> dict[str, Any]:
        """Return the request a counter's alert button sends."""
        return {"path": f"/api/v1/branches/{branch_id}/counters/{counter_id}/alerts", "body": {"kind": kind},
                "token": self.counter_tokens[branch_id, counter_id]}

    def resolve_open_pages(self, branches: list[Branch]) -> int:
        """Resolve every open or acknowledged page of these branches; return how many."""
        todo = []
        for branch in branches:
            token = self.device_tokens[branch.id][0]
            for status in ("open", "acknowledged"):
                reply = requests.get(f"{self.url('pager')}/api/v1/branches/{branch.id}/pages",
                                     params={"status": status}, headers={"Authorization": f"Bearer {token}"},
                                     timeout=10)
                reply.raise_for_status()
                todo += [{"path": f"/api/v1/branches/{branch.id}/pages/{page['id']}/resolve", "body": {},
                          "token": token} for page in reply.json()["pages"]]
        if todo:
            self.admin(self.url("pager"), todo)
        self.settle()
        return len(todo)

    def warm_up(self) -> None:
        """Run each path once (its first use loads its Lua scripts and opens its connections), then clean up."""
        branch = self.branches[0]
        vip = {"token": self.counter_tokens[branch.id, "vip"]}
        self.admin(self.url("counter"), [
            self.alert(branch.id, "1"),
            {"path": f"/api/v1/branches/{branch.id}/counters/vip/pause", **vip,
             "body": {"reason": "break", "expected_minutes": 5}},
        ])
        self.settle()
        self.admin(self.url("counter"), [{"path": f"/api/v1/branches/{branch.id}/counters/vip/resume", **vip}])
        self.settle()
        self.resolve_open_pages([branch])

    @contextmanager
    def hello_server(self) -> Iterator[str]:
        """Serve the kiosk app plus a hello-world route under the stack's gunicorn settings; yield its URL."""
        port = free_port()
        hello = subprocess.Popen(gunicorn_command("bench.hello:create_app()", f"127.0.0.1:{port}"), cwd=ROOT,
                                 env=self.stack.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while not answers_ready(base):
                if time.monotonic() > deadline or hello.poll() is not None:
                    raise RuntimeError("the hello-world server did not start")
                time.sleep(0.1)
            yield base
        finally:
            hello.terminate()
            hello.wait(10)

    # What the stack takes -------------------------------------------------------------------------

    def lobby_bytes(self) -> dict[str, int]:
        """Return what the lobby keys take in Redis (MEMORY USAGE, exact), tokens aside: streams, the rest."""
        names = [k for k in self.r.scan_iter("lobby:*", count=2000) if ":token" not in k]
        sizes = {"streams": 0, "state": 0}
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            pipe = self.r.pipeline(transaction=False)
            for name in chunk:
                pipe.memory_usage(name, samples=0)
            for name, size in zip(chunk, pipe.execute(), strict=True):
                sizes["streams" if ":stream:" in name else "state"] += size or 0
        return sizes

    def rss(self) -> dict[str, int]:
        """Return the resident memory (KiB) of each child of the stack, and of Redis."""
        return self.each(rss_kib)

    def pss(self) -> dict[str, int]:
        """Return the proportional memory (KiB) of each child of the stack, and of Redis (machine.pss_kib)."""
        return self.each(pss_kib)

    def cpu(self) -> dict[str, float]:
        """Return the CPU seconds used so far by each child of the stack, and by Redis."""
        return self.each(cpu_s)

    def each(self, read: Callable[[int], Any]) -> dict[str, Any]:
        """Return a figure of each child of the stack (its process tree), and of Redis."""
        out = {c.name: read(c.process.pid) for c in self.stack.children if c.process}
        if self.stack.redis and self.stack.redis.process:
            out["redis"] = read(self.stack.redis.process.pid)
        return out
