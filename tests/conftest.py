"""Fixtures: a real Redis on a free port, the apps, in-process workers, and the whole stack over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from services.common import auth, contracts, keys
from services.common.config import DEMO_CONFIG, branches_at
from services.common.redis_server import RedisServer, free_port
from services.stack import Stack
from tests.sse import SSEClient

BRANCH = "zhongnan"


QUICK = "quick"
# A second branch, like the demo but with timers short enough to watch escalation in a test.
QUICK_ESCALATION = """[branches.escalation]
urgent_s = 3
high_s = 2
normal_s = 2
low_s = 0
repeat_urgent_s = 1
"""


BLEND = "blend"
# A third branch whose counter 1 serves VIP and personal customers, two VIP calls for each personal
# one, with a 20-minute wait limit and two recalls at most: the routing rules of the queueing issue.
BLEND_COUNTER = """[[branches.counters]]
id = "1"
window = "1"
serves = ["vip", "personal"]
weights = { vip = 2, personal = 1 }
"""


def quick_branch_toml() -> str:
    """Return the test branch file: the demo branch, `quick` (short timers) and `blend` (routing)."""
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    quick = demo.replace('id = "zhongnan"', f'id = "{QUICK}"')
    quick = quick[: quick.index("[branches.escalation]")] + QUICK_ESCALATION
    blend = (demo.replace('id = "zhongnan"', f'id = "{BLEND}"')
             .replace("wait_limit_minutes = 30\n", "wait_limit_minutes = 20\n")
             .replace("recall_limit = 3\n", "recall_limit = 2\n"))
    blend = blend.replace('[[branches.counters]]\nid = "1"\nwindow = "1"\nserves = ["personal"]\n', BLEND_COUNTER)
    assert "weights =" in blend and "recall_limit = 2" in blend and "wait_limit_minutes = 20" in blend
    body = lambda text: text[text.index("[[branches]]\nid"):]  # noqa: E731
    return demo + "\n" + body(quick) + "\n" + body(blend)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The tests' own Redis, and the branch file every process of the session reads (demo + quick)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    config = tmp_path_factory.mktemp("config") / "branches.toml"
    config.write_text(quick_branch_toml(), encoding="utf-8")
    os.environ["REDIS_URL"] = server.url
    os.environ["LOBBY_CONFIG"] = str(config)
    yield server
    server.stop()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the test Redis, with every lobby key removed before and after the test."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    _clean(client)
    yield client
    _clean(client)
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client on a Redis of the test's own, which no worker of the session's stack reads or writes."""
    server = RedisServer(tmp_path, appendonly=False).start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()
    server.stop()


def _clean(client: redis.Redis) -> None:
    """Drop queued jobs, let the stack's workers finish the jobs and page requests they hold, then remove our keys.

    The workers' own registrations stay: they keep running across tests. The page-request stream goes with the
    other lobby keys; the stack's pager workers make it and their group again at once.
    """
    import time

    from rq.registry import StartedJobRegistry

    for pattern in ("rq:queue:*", "rq:scheduled:*"):
        for key in client.scan_iter(pattern, count=1000):
            if not key.endswith(":intermediate"):
                client.delete(key)
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        held = sum(raw.llen(f"rq:queue:{q}:intermediate") + StartedJobRegistry(q, connection=raw).count
                   for q in contracts.QUEUES) + contracts.page_request_backlog(raw)["pending"]
        if not held:
            break
        time.sleep(0.02)
    for pattern in ("lobby:*", "rq:job:*", "rq:queue:*"):
        for key in client.scan_iter(pattern, count=1000):
            client.delete(key)


@pytest.fixture
def branch():
    return branches_at(DEMO_CONFIG)[BRANCH]


@pytest.fixture
def quick_branch(redis_server):
    return branches_at(Path(os.environ["LOBBY_CONFIG"]))[QUICK]


@pytest.fixture
def blend_branch(redis_server):
    return branches_at(Path(os.environ["LOBBY_CONFIG"]))[BLEND]


class FakeClock:
    """A clock the test moves by hand: services read it through services.common.clock."""

    def __init__(self, start):
        self.moment = start

    def now(self):
        return self.moment

    def now_ms(self) -> int:
        return int(self.moment.timestamp() * 1000)

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.moment += timedelta(seconds=seconds)


def today_at_nine():
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    return datetime.combine(datetime.now(zone).date(), time(9), zone)


@pytest.fixture
def fake_clock(monkeypatch):
    """Freeze time at 09:00 today in Shanghai; move it with fake_clock.advance(seconds).

    Today, not a fixed day: the stack's counter worker (real clock) closes earlier days' tickets.
    """
    from services.common import clock

    fake = FakeClock(today_at_nine())
    monkeypatch.setattr(clock, "now", fake.now)
    monkeypatch.setattr(clock, "now_ms", fake.now_ms)
    return fake


@pytest.fixture
def apps(r: redis.Redis):
    """The three Flask apps, in process, on the test Redis."""
    from services.counter.app import create_app as counter_app
    from services.kiosk.app import create_app as kiosk_app
    from services.pager.app import create_app as pager_app

    return {"kiosk": kiosk_app({"TESTING": True}), "counter": counter_app({"TESTING": True}),
            "pager": pager_app({"TESTING": True})}


@pytest.fixture
def clients(apps):
    return {name: app.test_client() for name, app in apps.items()}


def run_jobs(r: redis.Redis, *queues: str) -> None:
    """Deliver every waiting page request and run every queued job, in process, until none is left (jobs enqueue
    jobs); as the pager worker would, page requests come from the page-request stream (as consumer "tests").

    When the session's stack is up its workers may take some of the jobs and page requests: wait for them too.
    """
    from services.pager import intake

    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    names = queues or contracts.QUEUES
    for _ in range(5):
        if contracts.PAGER in names:
            intake.drain(redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True), consumer="tests")
        qs = [contracts.queue(q, raw) for q in names]
        if not any(q.count for q in qs):
            break
        SimpleWorker(qs, connection=raw, serializer=JSONSerializer).work(burst=True)
    settle()


@pytest.fixture
def jobs(r: redis.Redis):
    return lambda *queues: run_jobs(r, *queues)


@pytest.fixture
def token(r: redis.Redis):
    """Issue a token: token("counter", "vip") or token("device", "lobby-manager")."""

    def issue(kind: str, subject: str, branch_id: str = BRANCH) -> str:
        return auth.issue(r, branch_id, kind, subject)

    return issue


@pytest.fixture(scope="session")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system as it runs in a branch: gunicorn services and RQ workers, on the test Redis."""
    logs = tmp_path_factory.mktemp("stack-logs")
    running = Stack(ports={"kiosk": free_port(), "counter": free_port(), "pager": free_port()},
                    redis_url=redis_server.url, config_path=Path(os.environ["LOBBY_CONFIG"]), log_dir=logs).start()
    yield running
    running.stop()


@pytest.fixture
def live(stack: Stack, r: redis.Redis):
    """The running stack, with a clean Redis for this test."""
    return stack


@pytest.fixture
def sse() -> Iterator[callable]:
    opened: list[SSEClient] = []

    def open_stream(url: str, **kwargs) -> SSEClient:
        client = SSEClient(url, **kwargs).start()
        opened.append(client)
        return client

    yield open_stream
    for client in opened:
        client.close()


def record_reliability(name: str, figures: dict) -> None:
    """Keep what a fault or bad-input test measured in var/reliability/<name>.json, for RELIABILITY.md."""
    import json

    results = Path("var/reliability")
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")


def stack_logs(stack: Stack) -> str:
    """Return the tail of every child's log, for a failing test's message."""
    out = []
    for log in sorted(Path(stack.log_dir or ".").glob("*.log")):
        out.append(f"== {log.name}\n" + log.read_text(errors="replace")[-3000:])
    return "\n".join(out)


def settle(timeout: float = 10.0) -> None:
    """Wait until the stack's workers have run every queued job and page request: no job queued, being handed
    over (RQ's intermediate list) or started, no page request unread or in hand, no lobby screen waiting for the
    kiosk worker's redraw, three checks in a row."""
    import time

    from rq.registry import StartedJobRegistry

    raw = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + timeout
    idle = 0
    while idle < 3:
        busy = 0
        for name in contracts.QUEUES:
            q = contracts.queue(name, raw)
            busy += q.count + raw.llen(f"{q.key}:intermediate") + StartedJobRegistry(queue=q).count
        backlog = contracts.page_request_backlog(raw)
        busy += backlog["lag"] + backlog["pending"] + raw.scard(keys.screens_stale())
        idle = idle + 1 if busy == 0 else 0
        if time.monotonic() > deadline:
            raise AssertionError("workers did not settle")
        time.sleep(0.05)
