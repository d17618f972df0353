"""B8: the records database. Archiving a closed day of many branches into PostgreSQL, a 12-month trends page,
and what Redis holds once it keeps only today and redis_days.

The day is real: a busy day (scenarios/busy-day.toml) run by the simulator on a Redis of B8's own, with calls of
every kind a teller makes added and answered; its keys are then copied to each branch (b00, b01…), so every
branch's day is the same size. Each branch's day is archived as the pager's job does it (read from Redis, one
transaction checked by count). Baselines in the same run: the same archive into SQLite (the embedded default),
and the daily report of one archived day read from the database beside the trends page. B8 uses the
PostgreSQL named by LOBBY_BENCH_POSTGRES (default the machine's, 127.0.0.1:5432, database test), in a schema of
its own that it drops after; without one it says so and measures SQLite only.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import redis
import sqlalchemy

from bench.driver import Driver
from bench.plan import BRANCH_ID
from services.domain import alerts, keys, pages
from services.domain.branch import Branch
from services.domain.contracts import PageKind, Priority
from services.domain.stats import percentile
from services.ops.redis_server import RedisServer
from services.pager import archive, retention
from services.pager.report import archived, figures
from services.pager.trends import figures as trends
from services.records import database
from services.simulate import day
from services.simulate.scenario import load

ROOT = Path(__file__).resolve().parent.parent
BUSY_DAY = ROOT / "scenarios" / "busy-day.toml"
POSTGRES = os.environ.get("LOBBY_BENCH_POSTGRES") or "postgresql://postgres@127.0.0.1:5432/test"
# Calls added to the simulated day, so that a branch's day has about 40 pages as a busy branch's does.
CALLS = [(PageKind.DISTRESS, Priority.URGENT), (PageKind.ASK_SUPERVISOR, Priority.HIGH),
         (PageKind.HELP, Priority.HIGH)]


def one_day(r: redis.Redis, pages_wanted: int) -> tuple[Branch, str, day.SimClock]:
    """Run a busy day and add answered calls until it has `pages_wanted` pages; return the branch, the day and a
    clock on the next morning."""
    scenario = load(BUSY_DAY)
    branch = scenario.load_branch()
    simulation = day.Simulation(r, branch, scenario)
    happened = simulation.run()
    clock = day.SimClock(simulation.clock.now_ms())
    manager = branch.managers[0]
    counters = [c.id for c in branch.counters]
    n = 0
    while r.zcard(keys.pages_all(branch.id)) < pages_wanted:
        kind, priority = CALLS[n % len(CALLS)]
        clock.ms += 40_000
        request = alerts.page_request(branch, counters[n % len(counters)], kind, priority, f"call {n}", {},
                                      clock.now())
        alerts.raise_alert(r, request)
        page, _ = pages.create(r, branch, request, clock)
        clock.ms += (5 + n % 20) * 1000
        pages.acknowledge(r, branch, page.id, manager, clock=clock)
        pages.resolve(r, branch, page.id, manager, "done", clock=clock)
        n += 1
    return branch, happened.day, day.SimClock(simulation.clock.now_ms() + 86_400_000)


def copy_branch(r: redis.Redis, source: str, target: str) -> None:
    """Copy every key of one branch to another branch id (DUMP and RESTORE)."""
    prefix, into = keys.branch(source), keys.branch(target)
    for key in r.scan_iter(f"{prefix}:*", count=1000):
        dumped = r.dump(key)
        if dumped is not None:
            r.restore(into + key[len(prefix):], 0, dumped, replace=True)


def day_bytes(r: redis.Redis, branch: Branch, closed: str) -> int:
    """Return the bytes Redis gives one day of a branch: its own keys, and its pages with their alerts."""
    page_ids, day_keys = retention.day_keys(r, branch, closed)
    raws = r.mget([keys.page(branch.id, i) for i in page_ids]) if page_ids else []
    alert_ids = [a for raw in raws if raw for a in json.loads(raw).get("details", {}).get("alert_ids", [])]
    held = [*day_keys, *(keys.page(branch.id, i) for i in page_ids), *(keys.alert(branch.id, a) for a in alert_ids)]
    return sum(r.memory_usage(key, samples=0) or 0 for key in held)


def archive_all(r: redis.Redis, db: sqlalchemy.Engine, branches: list[Branch], closed: str, clock: day.SimClock
                ) -> dict[str, Any]:
    """Archive the day of every branch, as the job does; time the whole and its read and write halves."""
    read_s = write_s = 0.0
    counts: dict[str, int] = {}
    started = time.perf_counter()
    for branch in branches:
        t0 = time.perf_counter()
        found = archive.read_day(r, branch, closed, clock)
        t1 = time.perf_counter()
        done = archive.write_day(db, found, "2000-01-01T00:00:00.000+08:00")
        write_s += time.perf_counter() - t1
        read_s += t1 - t0
        assert done.written
        for name, n in done.counts.items():
            counts[name] = counts.get(name, 0) + n
    return {"seconds": round(time.perf_counter() - started, 2), "read_redis_s": round(read_s, 2),
            "write_db_s": round(write_s, 2), "rows": counts}


def year_of_days(db: sqlalchemy.Engine, found: archive.DayRows, branch_id: str, last: date, days: int) -> int:
    """Write `days` days (ending at `last`) for one branch, each a copy of one archived day; return rows."""
    written = 0
    for back in range(days):
        moved = (last - timedelta(days=back)).isoformat()
        copy = archive.DayRows(branch_id, moved)
        for table, rows in found.rows.items():
            copy.rows[table] = [_moved(table, row, found.day, moved, branch_id) for row in rows]
        weekday = date.fromisoformat(moved).weekday()
        for row in copy.rows["tickets"]:
            row["weekday"] = weekday
        archive.write_day(db, copy, "2000-01-01T00:00:00.000+08:00")
        written += sum(len(rows) for rows in copy.rows.values())
    return written


def _moved(table: str, row: dict[str, Any], old: str, new: str, branch_id: str) -> dict[str, Any]:
    """Return a row of one day as the same row on another day (its times moved, page and alert ids made unique)."""

    def move(value: Any) -> Any:
        return value.replace(old, new) if isinstance(value, str) else value

    moved = {k: move(v) for k, v in row.items()} | {"branch": branch_id}
    if table in ("pages", "alerts"):
        moved["id"] = f"{row['id']}@{new}"
    if "page_id" in row:
        moved["page_id"] = f"{row['page_id']}@{new}"
    if table == "pages":
        moved["page"] = {k: move(v) for k, v in row["page"].items()} | {"id": moved["id"]}
        moved["page"]["audit"] = [{k: move(v) for k, v in e.items()} for e in row["page"].get("audit", [])]
    return moved


def timed(call: Any, times: int) -> dict[str, Any]:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        spent.append((time.perf_counter() - started) * 1000)
    return {"n": times, "p50_ms": round(percentile(spent, 50), 1), "p95_ms": round(percentile(spent, 95), 1),
            "max_ms": round(max(spent), 1), "mean_ms": round(statistics.fmean(spent), 1)}


def postgres_schema() -> tuple[sqlalchemy.Engine, str] | None:
    """Make a schema of B8's own on the benchmark PostgreSQL; return its engine and name (None: none reachable)."""
    admin = database.connect(POSTGRES, poolclass=sqlalchemy.pool.NullPool)
    schema = f"lobby_bench_{uuid.uuid4().hex[:10]}"
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except sqlalchemy.exc.OperationalError:
        return None
    finally:
        admin.dispose()
    url = database.normalize(POSTGRES)
    url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    db = database.connect(url)
    database.migrate(db)
    return db, schema


def drop_schema(schema: str) -> None:
    admin = database.connect(POSTGRES, poolclass=sqlalchemy.pool.NullPool)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def b8(d: Driver) -> dict[str, Any]:
    """Archive one day of many branches into PostgreSQL (and SQLite); render 12 months of trends; Redis's
    footprint with the short window."""
    plan = d.plan
    result: dict[str, Any] = {"branches": plan.b8_branches}
    with tempfile.TemporaryDirectory(prefix="lobby-b8-") as folder:
        socket = Path(folder) / "redis.sock"
        server = RedisServer(Path(folder), appendonly=False, extra_args=("--unixsocket", str(socket))).start()
        r = redis.Redis(unix_socket_path=str(socket), decode_responses=True)
        postgres = postgres_schema()
        try:
            d.log("  a busy day, with its calls…")
            source, closed, clock = one_day(r, plan.b8_pages_per_branch)
            branches = [source.model_copy(update={"id": BRANCH_ID.format(i)}) for i in range(plan.b8_branches)]
            for branch in branches:
                copy_branch(r, source.id, branch.id)
            per_day = day_bytes(r, branches[0], closed)
            found = archive.read_day(r, branches[0], closed, clock)
            result["per_branch_day"] = {"tickets": len(found.rows["tickets"]), "pages": len(found.rows["pages"]),
                                        "redis_bytes": per_day}
            # B6 again: what a region's Redis holds of history with today + redis_days, against 90 days.
            window = source.redis_days + 1
            result["redis_window"] = {
                "days_kept": window, "branch_mib": round(per_day * window / 2**20, 1),
                "region_500_gib": round(per_day * window * 500 / 2**30, 2),
                "region_500_gib_at_91_days": round(per_day * 91 * 500 / 2**30, 2),
            }
            sqlite = database.connect(database.sqlite_url(Path(folder) / "records.db"))
            database.migrate(sqlite)
            d.log(f"  archiving {plan.b8_branches} branches' day into SQLite…")
            result["sqlite"] = archive_all(r, sqlite, branches, closed, clock)
            if postgres is None:
                result["postgres"] = None
                result["note"] = f"no PostgreSQL at {POSTGRES} (LOBBY_BENCH_POSTGRES): measured SQLite only"
                db = sqlite
            else:
                db = postgres[0]
                d.log(f"  archiving {plan.b8_branches} branches' day into PostgreSQL…")
                result["postgres"] = archive_all(r, db, branches, closed, clock)
            d.log(f"  {plan.b8_trend_days} days of one branch, then its trends…")
            trend_branch = source.model_copy(update={"id": "trends"})
            today = date.fromisoformat(closed) + timedelta(days=1)
            rows = year_of_days(db, found, trend_branch.id, today - timedelta(days=1), plan.b8_trend_days)
            span = "12m" if plan.b8_trend_days >= 365 else "4w"
            result["trends"] = {
                "days": plan.b8_trend_days, "rows": rows, "range": span,
                "page": timed(lambda: trends.render_page(db, trend_branch, span, today.isoformat()),
                              plan.b8_renders),
                "daily_report_from_db": timed(lambda: figures.build_from(
                    trend_branch, closed, archived.read_day(db, trend_branch, closed), clock.now()), plan.b8_renders),
            }
            sqlite.dispose()
        finally:
            r.close()
            server.stop()
            if postgres is not None:
                postgres[0].dispose()
                drop_schema(postgres[1])
    return result
