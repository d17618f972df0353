"""The archive under faults, with a real pager worker, real RQ and a real PostgreSQL: its worker killed in the
middle of the transaction, and the database unreachable when the day closes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import redis
import sqlalchemy
from rq.job import Job
from sqlalchemy import func, select

from services.domain import held_days, keys, tickets
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, business_day
from services.ops.stack import descendants
from services.pager import archive, retention
from services.records import database, tables
from tests.sse import eventually

BRANCH = "zhongnan"


@contextlib.contextmanager
def pager_worker(redis_url: str, database_url: str, log: Path) -> Iterator[subprocess.Popen]:
    """A pager worker process (its RQ queue, its archive and retention loop), stopped and reaped after."""
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "services.ops.cli", "worker", "pager"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            for pid in [process.pid, *descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait(10)


def a_closed_day(r: redis.Redis, branch: Branch, days_ago: int, count: int) -> str:
    """Write `count` tickets served `days_ago` days ago, as the counter service leaves them, and close the day."""
    day = business_day(branch, SYSTEM.now() - timedelta(days=days_ago))
    category = branch.categories[0]
    pipe = r.pipeline(transaction=False)
    pipe.set(keys.ticket_seq(branch.id, day, category.id), count)
    for n in range(1, count + 1):
        issued = f"{day}T09:{(n // 60) % 60:02d}:{n % 60:02d}.000+08:00"
        called = f"{day}T10:{(n // 60) % 60:02d}:{n % 60:02d}.000+08:00"
        pipe.hset(keys.ticket(branch.id, day, f"{category.prefix}{n:03d}"), mapping={
            "number": f"{category.prefix}{n:03d}", "category": category.id, "status": "served", "issued_at": issued,
            "called_at": called, "window": "1", "counter": "1", "served_at": called, "day": day})
        if n % 5000 == 0:
            pipe.execute()
    pipe.sadd(keys.days(branch.id), day)
    pipe.execute()
    tickets.close_past_days(r, branch)
    assert day in held_days.waiting(r, branch)
    return day


def tickets_of(db: sqlalchemy.Engine, day: str) -> int:
    with db.connect() as connection:
        return connection.execute(select(func.count()).select_from(tables.tickets)
                                  .where(tables.tickets.c.branch == BRANCH, tables.tickets.c.day == day)).scalar_one()


def writing_tickets(db: sqlalchemy.Engine) -> bool:
    """Say whether some connection is inside a transaction that has written tickets and not committed."""
    with db.connect() as connection:
        return bool(connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
            "AND query ILIKE 'INSERT INTO tickets%'")).scalar_one())


def test_a_worker_killed_in_the_middle_of_the_archive_leaves_nothing_and_the_next_run_one_copy(
        own_redis, postgres_url, ctx, tmp_path):
    branch = ctx.branches[BRANCH]
    count = 30_000
    day = a_closed_day(own_redis, branch, days_ago=2, count=count)
    db = database.connect(postgres_url, poolclass=sqlalchemy.pool.NullPool)
    url = own_redis.connection_pool.connection_kwargs
    redis_url = f"redis://{url['host']}:{url['port']}/0"
    with pager_worker(redis_url, postgres_url, tmp_path / "worker.log") as worker:
        eventually(lambda: writing_tickets(db), timeout=30, interval=0.01)
        for pid in [worker.pid, *descendants(worker.pid)]:
            os.kill(pid, signal.SIGKILL)
    eventually(lambda: not writing_tickets(db), timeout=10)  # PostgreSQL rolls the killed transaction back
    assert tickets_of(db, day) == 0, "a killed archive leaves nothing"
    assert held_days.waiting(own_redis, branch) == [day], "the day still waits, whole, in Redis"

    done = subprocess.run([sys.executable, "-m", "services.ops.cli", "archive", "--branch", BRANCH, "--day", day],
                          env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": postgres_url},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{BRANCH} {day}: archived" in done.stdout
    assert tickets_of(db, day) == count, "exactly one copy"
    again = subprocess.run([sys.executable, "-m", "services.ops.cli", "archive", "--branch", BRANCH, "--day", day],
                           env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": postgres_url},
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already archived, unchanged" in again.stdout, again.stdout + again.stderr
    assert tickets_of(db, day) == count
    db.dispose()


class Proxy:
    """A TCP relay to the database that can be cut and restored: the database as the services see it."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.listener: socket.socket | None = None
        self.open: list[socket.socket] = []

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop listening and drop every connection."""
        if self.listener:
            self.listener.close()
            self.listener = None
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()
        self.open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_with_the_database_down_at_day_close_nothing_is_lost_and_the_archive_completes_when_it_returns(
        own_redis, postgres_url, ctx, tmp_path):
    branch = ctx.branches[BRANCH]
    day = a_closed_day(own_redis, branch, days_ago=branch.redis_days + 3, count=120)
    target = sqlalchemy.engine.make_url(postgres_url)
    proxy = Proxy((target.host or "127.0.0.1", target.port or 5432))
    through_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    kw = own_redis.connection_pool.connection_kwargs
    redis_url = f"redis://{kw['host']}:{kw['port']}/0"
    db = database.connect(postgres_url, poolclass=sqlalchemy.pool.NullPool)
    log = tmp_path / "worker.log"
    with pager_worker(redis_url, through_proxy, log):
        rq = redis.Redis.from_url(redis_url)
        name = archive.job_id(branch.id, day)

        def failed_once() -> bool:
            job = Job.fetch(name, connection=rq) if Job.exists(name, connection=rq) else None
            return job is not None and job.retries_left is not None and job.retries_left < archive.RETRY.max

        eventually(failed_once, timeout=30)  # the job failed on the unreachable database, to be tried again
        assert retention.remove_archived_days(own_redis, branch) == [], "retention keeps a day not archived"
        assert own_redis.exists(keys.ticket(branch.id, day, f"{branch.categories[0].prefix}001"))
        status = subprocess.run([sys.executable, "-m", "services.ops.cli", "status", "--json"],
                                env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True,
                                timeout=60)
        lag = next(b["archive"] for b in json.loads(status.stdout)["branches"] if b["branch"] == BRANCH)
        assert lag["waiting_days"] == 1 and lag["oldest_waiting"] == day, lag

        proxy.start()  # the database is back: the job's retry completes the archive
        eventually(lambda: held_days.is_archived(own_redis, branch, day), timeout=60, interval=0.2)
    proxy.cut()
    assert tickets_of(db, day) == 120
    assert held_days.lag(own_redis, branch).days == 0
    assert retention.remove_archived_days(own_redis, branch) == [day], \
        "once archived, retention removes it"
    assert not own_redis.exists(keys.ticket(branch.id, day, f"{branch.categories[0].prefix}001"))
    db.dispose()
