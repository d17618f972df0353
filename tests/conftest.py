"""Fixtures: real Redis servers on free ports, the apps in process, the workers' work run in process, and the
whole stack over HTTP.

Two Redis servers: one for what runs in this process (the apps' test clients, the domain, the work of the workers
run here, `r`), and one for the session's stack (gunicorn services and worker processes, `live`), so that no test
in process shares a queue or a stream with the stack's workers. `r` is a client of the Redis the test works on:
the stack's when the test uses `live`, else the in-process one.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest
import redis

from services.domain import contracts, keys, tickets
from services.domain.branch import DEMO_CONFIG, Branch, Category, load_branches
from services.domain.clock import SYSTEM, Clock
from services.ops.redis_server import RedisServer, free_port
from services.ops.stack import Stack
from services.records import database
from services.runtime import messages, worker
from services.runtime.settings import Context
from services.web import auth
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
info_close_s = 3
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


WATCHED = "watched"
# A fourth branch whose screens and terminals are found offline within seconds: supervision seen end to end.
WATCHED_SUPERVISION = """[branches.supervision]
offline_after_s = 3
heartbeat_s = 1
"""


def bearer(token: str) -> dict[str, str]:
    """Return the header that presents a token."""
    return {"Authorization": f"Bearer {token}"}


def quick_branch_toml() -> str:
    """Return the test branch file: the demo branch, `quick` (short timers), `blend` (routing) and `watched`
    (supervision)."""
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    quick = demo.replace('id = "zhongnan"', f'id = "{QUICK}"')
    quick = quick[: quick.index("[branches.escalation]")] + QUICK_ESCALATION
    blend = (demo.replace('id = "zhongnan"', f'id = "{BLEND}"')
             .replace("wait_limit_minutes = 30\n", "wait_limit_minutes = 20\n")
             .replace("recall_limit = 3\n", "recall_limit = 2\n"))
    blend = blend.replace('[[branches.counters]]\nid = "1"\nwindow = "1"\nserves = ["personal"]\n', BLEND_COUNTER)
    assert "weights =" in blend and "recall_limit = 2" in blend and "wait_limit_minutes = 20" in blend
    watched = demo.replace('id = "zhongnan"', f'id = "{WATCHED}"')
    watched = watched[: watched.index("[branches.supervision]")] + WATCHED_SUPERVISION
    body = lambda text: text[text.index("[[branches]]\nid"):]  # noqa: E731
    return demo + "\n" + body(quick) + "\n" + body(blend) + "\n" + body(watched)


def state(r: redis.Redis) -> dict[bytes, bytes]:
    """Every lobby key with its serialized value: equal before and after a request means it changed nothing.

    Workers' heartbeats, what web processes say they hold, their stream readers' wake-ups, and endpoints' presence
    are left out: they are written by running processes and by event streams opening and closing (a previous
    test's streams may still be leaving), never by a request.
    """
    kw = r.connection_pool.connection_kwargs
    client = redis.Redis(host=kw["host"], port=kw["port"], db=kw.get("db", 0))
    running = (keys.worker("").encode(), keys.WEB_PROCESSES.encode(), f"{keys.PREFIX}:hub-wake:".encode())
    return {key: client.dump(key) for key in sorted(client.scan_iter("lobby:*"))
            if not key.startswith(running) and b":presence:" not in key}


@pytest.fixture(scope="session")
def branch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The branch file every process of the session reads (demo, quick and blend), named by LOBBY_CONFIG."""
    config = tmp_path_factory.mktemp("config") / "branches.toml"
    config.write_text(quick_branch_toml(), encoding="utf-8")
    os.environ["LOBBY_CONFIG"] = str(config)
    return config


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory, branch_file: Path) -> Iterator[RedisServer]:
    """The Redis of what runs in this process (REDIS_URL for the apps made here)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False).start()
    os.environ["REDIS_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The Redis of the session's stack."""
    server = RedisServer(tmp_path_factory.mktemp("stack-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def r(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on the Redis this test works on (the stack's for a test using `live`), every lobby key removed
    before and after the test."""
    uses_stack = "live" in request.fixturenames
    server = request.getfixturevalue("stack_redis") if uses_stack else redis_server
    client = redis.Redis.from_url(server.url, decode_responses=True)
    _clean(client, request.getfixturevalue("stack") if uses_stack else None)
    yield client
    _clean(client, request.getfixturevalue("stack") if uses_stack else None)
    client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A client on a Redis of the test's own, for a test that must not share even the in-process one."""
    server = RedisServer(tmp_path, appendonly=False).start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()
    server.stop()


def _clean(client: redis.Redis, stack: Stack | None) -> None:
    """Remove the lobby's keys and the queues' jobs, after the stack's workers (if any) finished what they hold;
    worker registrations and heartbeats stay (the stack's workers run across tests)."""
    if stack is not None:
        stack.settle()
    for pattern in ("lobby:*", "rq:job:*", "rq:queue:*", "rq:scheduled:*"):
        for key in client.scan_iter(pattern, count=1000):
            if not key.startswith(keys.worker("")):
                client.delete(key)


@pytest.fixture(scope="session")
def ctx(redis_server: RedisServer) -> Context:
    """The context of what runs in this process: its settings and branches."""
    return Context.from_env()


@cache
def _branches(path: Path) -> dict[str, Branch]:
    return load_branches(path)


@pytest.fixture
def branch() -> Branch:
    return _branches(DEMO_CONFIG)[BRANCH]


@pytest.fixture
def quick_branch(branch_file: Path) -> Branch:
    return _branches(branch_file)[QUICK]


@pytest.fixture
def blend_branch(branch_file: Path) -> Branch:
    return _branches(branch_file)[BLEND]


def issue(r: redis.Redis, branch: Branch, category: Category, clock: Clock = SYSTEM) -> str:
    """Take the next ticket of a category, as the kiosk does; return its number."""
    return tickets.take(r, branch, category, clock=clock).number


class FakeClock(Clock):
    """A clock the test moves by hand."""

    def __init__(self, start: datetime):
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def now_ms(self) -> int:
        return int(self.moment.timestamp() * 1000)

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.moment += timedelta(seconds=seconds)


def today_at_nine() -> datetime:
    from datetime import time as day_time
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    return datetime.combine(datetime.now(zone).date(), day_time(9), zone)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Freeze the clock the domain reads by default (clock.SYSTEM) at 09:00 today in Shanghai; move it with
    fake_clock.advance(seconds)."""
    fake = FakeClock(today_at_nine())
    monkeypatch.setattr(SYSTEM, "now", fake.now)
    monkeypatch.setattr(SYSTEM, "now_ms", fake.now_ms)
    return fake


@pytest.fixture
def apps(r: redis.Redis, ctx: Context):
    """The three Flask apps, in process, on the in-process Redis."""
    from services.counter.app import create_app as counter_app
    from services.kiosk.app import create_app as kiosk_app
    from services.pager.app import create_app as pager_app

    config = {"TESTING": True, "CONTEXT": ctx}
    return {"kiosk": kiosk_app(config), "counter": counter_app(config), "pager": pager_app(config)}


@pytest.fixture
def clients(apps):
    return {name: app.test_client() for name, app in apps.items()}


def run_jobs(r: redis.Redis, *services: str) -> None:
    """Do, in process, what the services' workers would do with what is waiting on the in-process Redis (page
    requests, page news, kiosk jobs), until nothing is left (one's work makes another's)."""
    ctx = Context.from_env()
    raw = redis.Redis.from_url(ctx.settings.redis_url)
    for _ in range(5):
        for service in services or contracts.SERVICES:
            worker.run(ctx, importlib.import_module(f"services.{service}.worker").work(ctx), burst=True)
        waiting = sum(r.xlen(c.key) for c in contracts.CHANNELS)
        waiting += sum(messages.queue(q, raw).count for q in contracts.QUEUES)
        if not waiting:
            return


@pytest.fixture
def jobs(r: redis.Redis):
    return lambda *services: run_jobs(r, *services)


@pytest.fixture
def token(r: redis.Redis):
    """Issue a token: token("counter", "vip") or token("device", "lobby-manager")."""

    def make(kind: str, subject: str, branch_id: str = BRANCH) -> str:
        return auth.issue(r, branch_id, kind, subject)

    return make


_STACK: list[Stack] = []


@pytest.fixture(scope="session")
def stack(stack_redis: RedisServer, branch_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system as it runs in a branch: gunicorn services and worker processes, on the stack's Redis."""
    logs = tmp_path_factory.mktemp("stack-logs")
    running = Stack(ports={"kiosk": free_port(), "counter": free_port(), "pager": free_port()},
                    redis_url=stack_redis.url, config_path=branch_file, log_dir=logs,
                    var_dir=tmp_path_factory.mktemp("stack-var")).start()
    _STACK.append(running)
    yield running
    _STACK.clear()
    running.stop()


@pytest.fixture
def live(stack: Stack, r: redis.Redis) -> Stack:
    """The running stack, with a clean Redis for this test (`r` is a client of it)."""
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
    """Wait until the session stack's workers have finished everything they were given (Stack.settle)."""
    assert _STACK, "settle() waits for the session's stack: the test uses `live`"
    if not _STACK[0].settle(timeout):
        raise AssertionError(f"the stack's workers did not settle within {timeout} s")


# The records database tests run on SQLite and on PostgreSQL. LOBBY_TEST_POSTGRES names the PostgreSQL (default:
# the one on 127.0.0.1:5432, trust auth, database test); where none answers, its tests are skipped and say so,
# unless LOBBY_REQUIRE_POSTGRES is set (CI): then they fail, and so does the run if none of them ran.
POSTGRES_URL = os.environ.get("LOBBY_TEST_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/test"
_POSTGRES_RAN: list[str] = []


def _postgres_or_skip() -> None:
    import sqlalchemy

    probe = database.connect(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
    try:
        with probe.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        message = f"no PostgreSQL at {POSTGRES_URL} (LOBBY_TEST_POSTGRES): {str(exc).splitlines()[0]}"
        if os.environ.get("LOBBY_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    finally:
        probe.dispose()


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL, migrated; yield the URL whose connections work in it."""
    import uuid

    import sqlalchemy

    _postgres_or_skip()
    schema = f"lobby_test_{uuid.uuid4().hex[:12]}"
    admin = database.connect(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    url = database.normalize(POSTGRES_URL)
    url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    try:
        db = database.connect(url, poolclass=sqlalchemy.pool.NullPool)
        database.migrate(db)
        db.dispose()
        _POSTGRES_RAN.append(schema)
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, migrated records database: a SQLite file, or a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        url = database.sqlite_url(tmp_path / "records.db")
        db = database.connect(url)
        database.migrate(db)
        db.dispose()
        yield url
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a new, migrated records database on PostgreSQL, for what only a server can show."""
    with postgres_schema() as url:
        yield url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a run that had to test PostgreSQL (LOBBY_REQUIRE_POSTGRES) and did not."""
    if os.environ.get("LOBBY_REQUIRE_POSTGRES") and not _POSTGRES_RAN and exitstatus == 0:
        print("\nLOBBY_REQUIRE_POSTGRES is set, and no test ran against PostgreSQL")
        session.exitstatus = 1
