"""The archive: a closed day copied into the records database whole, once, checked, and read back the same.

Each test runs on SQLite and on PostgreSQL (`records_url`); the ones that need a server (a worker killed in the
middle of a transaction, the database gone at day close) run on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import func, select

from services.domain import alerts, held_days, keys, pages, tickets
from services.domain.branch import Branch
from services.domain.clock import Clock, business_day, parse_iso, to_ms
from services.domain.contracts import PageKind, Priority
from services.pager import archive, retention
from services.pager.report import figures
from services.records import database, tables
from services.simulate import day
from services.simulate.scenario import load

ROOT = Path(__file__).resolve().parent.parent


class At(Clock):
    """A clock stopped at one moment, moved by hand."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def now_ms(self) -> int:
        return to_ms(self.moment)


@pytest.fixture
def sim(own_redis: redis.Redis) -> redis.Redis:
    return own_redis


def simulated_day(r: redis.Redis) -> tuple[Branch, str, At]:
    """A simulated morning (tickets, a VIP pause that overruns, long waits) with a call of every kind besides,
    and a clock on the next morning, when the day is closed."""
    scenario = load(ROOT / "scenarios" / "vip-pause.toml").model_copy(update={"seed": 7})
    branch = scenario.load_branch()
    simulation = day.Simulation(r, branch, scenario)
    happened = simulation.run()
    moment = simulation.clock.now()
    clock = At(moment)
    manager = branch.managers[0]
    for n, (kind, priority, counter) in enumerate([(PageKind.DISTRESS, Priority.URGENT, "1"),
                                                   (PageKind.ASK_SUPERVISOR, Priority.HIGH, "2"),
                                                   (PageKind.HELP, Priority.HIGH, "3"),
                                                   (PageKind.DISTRESS, Priority.URGENT, "2")]):
        clock.moment = moment + timedelta(minutes=n)
        details = {"test": True} if n == 3 else {}
        message = "=HYPERLINK(\"http://x\")" if n == 1 else f"call {n}"  # what a spreadsheet would run
        request = alerts.page_request(branch, counter, kind, priority, message, details, clock.now())
        alerts.raise_alert(r, request)
        page, _ = pages.create(r, branch, request, clock)
        clock.moment += timedelta(seconds=7 + n)
        if kind == PageKind.DISTRESS:
            pages.acknowledge(r, branch, page.id, manager, clock=clock)
        elif kind == PageKind.ASK_SUPERVISOR:
            pages.reply(r, branch, page.id, manager, message="yes, go ahead", clock=clock)
            pages.resolve(r, branch, page.id, manager, "answered", clock=clock)
    since = (clock.now() - timedelta(seconds=90)).isoformat(timespec="milliseconds")
    offline = alerts.page_request(branch, None, PageKind.ENDPOINT_OFFLINE, Priority.NORMAL, "lobby display offline",
                                  {"endpoint_kind": "display", "endpoint": "lobby", "offline_since": since},
                                  clock.now())
    alerts.raise_alert(r, offline)
    page, _ = pages.create(r, branch, offline, clock)
    clock.moment += timedelta(seconds=30)
    pages.clear(r, branch, [offline.alert_id], clock)
    clock.moment = parse_iso(f"{happened.day}T09:00:00+08:00") + timedelta(days=1)
    return branch, happened.day, clock


def rows(db: sqlalchemy.Engine) -> dict[str, list[tuple]]:
    """Every row of every record table, in a stable order."""
    with db.connect() as connection:
        return {table.name: sorted(tuple(map(str, row)) for row in connection.execute(select(table)))
                for table in (tables.days, *tables.RECORDS)}


def report_json(report) -> dict:
    return report.model_dump(mode="json", exclude={"generated_at"})


def test_an_archived_day_reports_the_same_numbers_from_the_database_as_from_redis(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    from_redis = figures.build(sim, branch, closed, clock)
    assert from_redis.summary.issued > 100 and from_redis.summary.pauses and from_redis.summary.pages_escalated
    kinds = {row.kind for row in from_redis.pages if row.pages}
    assert {"distress", "ask_supervisor", "help", "pause", "resume", "pause_overrun", "vip_wait",
            "endpoint_offline"} <= kinds, kinds
    assert from_redis.test_calls and from_redis.supervision

    db = database.connect(records_url)
    done = archive.archive_day(sim, db, branch, closed, clock)
    assert done.written and all(done.counts[t] > 0 for t in ("tickets", "pauses", "pages", "page_events", "alerts",
                                                            "outages")), done.counts
    assert held_days.waiting(sim, branch) == [] and sim.hexists(keys.archived(branch.id), closed)

    from_db = figures.build(sim, branch, closed, clock, db=db)
    assert report_json(from_db) == report_json(from_redis)
    retention.remove_day(sim, branch, closed)
    assert not sim.exists(keys.ticket(branch.id, closed, "V001")), "Redis no longer holds the day"
    assert report_json(figures.build(sim, branch, closed, clock, db=db)) == report_json(from_redis), \
        "read from the database alone"
    db.dispose()


def test_a_tickets_history_is_kept_whole(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    raw = {number: sim.hgetall(keys.ticket(branch.id, closed, number)) for number in ("V001", "A001")}
    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, clock)
    with db.connect() as connection:
        kept = {row.number: row for row in connection.execute(
            select(tables.tickets).where(tables.tickets.c.number.in_(["V001", "A001"])))}
        recalled = connection.execute(select(func.count()).select_from(tables.tickets)
                                      .where(tables.tickets.c.recalls > 0)).scalar_one()
        told = connection.execute(select(func.count()).select_from(tables.tickets)
                                  .where(tables.tickets.c.estimate_s.is_not(None))).scalar_one()
    for number, ticket in raw.items():
        row = kept[number]
        assert (row.status, row.issued_at, row.called_at, row.window, row.counter) == (
            ticket["status"], ticket["issued_at"], ticket.get("called_at"), ticket.get("window"), ticket.get("counter"))
        assert row.hour == parse_iso(ticket["issued_at"]).astimezone(branch.zone).hour
    assert recalled > 0, "the scenario's tellers recall"
    assert told > 0, "the wait told at issue is kept"
    db.dispose()


def test_archiving_twice_changes_nothing(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    db = database.connect(records_url)
    first = archive.archive_day(sim, db, branch, closed, clock)
    before = rows(db)
    clock.moment += timedelta(hours=1)
    again = archive.archive_day(sim, db, branch, closed, clock)
    assert first.written and not again.written and again.counts == first.counts
    assert rows(db) == before
    db.dispose()


def test_a_records_rows_cannot_be_changed_or_removed_by_the_application(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, clock)
    before = rows(db)
    attempts = [
        sqlalchemy.update(tables.page_events).values(by="someone else"),
        sqlalchemy.delete(tables.page_events),
        sqlalchemy.update(tables.pages).values(acknowledged_by="someone else"),
        sqlalchemy.delete(tables.tickets),
        sqlalchemy.delete(tables.days),
    ]
    for statement in attempts:
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="insert-only"), db.begin() as connection:
            connection.execute(statement)
    if db.dialect.name == "postgresql":
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="insert-only"), db.begin() as connection:
            connection.execute(sqlalchemy.text("TRUNCATE page_events CASCADE"))
    assert rows(db) == before
    db.dispose()


def test_a_day_whose_rows_do_not_match_redis_is_not_marked_archived(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    found = archive.read_day(sim, branch, closed, clock)
    found.rows["tickets"].append(dict(found.rows["tickets"][0]))  # the same ticket twice: the key refuses it
    db = database.connect(records_url)
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        archive.write_day(db, found, "2026-12-01T09:00:00.000+08:00")
    assert archive.stored_counts(db, branch.id, closed) is None
    assert all(not r for r in rows(db).values()), "nothing of the day is left"
    db.dispose()


def test_retention_removes_an_archived_day_past_the_window_and_keeps_one_not_archived(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    tickets.close_past_days(sim, branch, clock)
    assert sim.sismember(keys.closed_days(branch.id), closed)
    later = At(clock.now() + timedelta(days=branch.redis_days + 1))
    assert retention.remove_archived_days(sim, branch, later) == [], "never a day not archived"
    assert sim.exists(keys.ticket(branch.id, closed, "V001"))
    assert held_days.lag(sim, branch, later).days == 1

    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, clock)
    assert retention.remove_archived_days(sim, branch, clock) == [], "within redis_days Redis keeps it"
    assert retention.remove_archived_days(sim, branch, later) == [closed]
    assert held_days.lag(sim, branch, later).days == 0
    left = [k for k in sim.scan_iter(f"{keys.branch(branch.id)}:*") if closed in k]
    assert left == [], left
    assert not sim.zcard(keys.pages_all(branch.id)), "the day's pages went with it"
    assert figures.build(sim, branch, closed, later, db=db).summary.issued > 100
    db.dispose()


def test_the_migrations_make_the_tables_the_code_reads(records_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = database.connect(records_url)
    with db.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), tables.metadata) == []
    assert database.current(db) == database.head()
    db.dispose()


def test_a_day_not_closed_is_not_archived(sim, records_url):
    branch, closed, _ = simulated_day(sim)
    db = database.connect(records_url)
    same_day = At(parse_iso(f"{closed}T18:00:00+08:00"))
    assert business_day(branch, same_day.now()) == closed
    with pytest.raises(ValueError, match="not closed"):
        archive.archive_day(sim, db, branch, closed, same_day)
    assert archive.stored_counts(db, branch.id, closed) is None
    db.dispose()


def test_lobby_export_writes_a_stretch_of_days_for_auditors(sim, records_url, capsys, tmp_path, monkeypatch):
    from services.ops import cli

    branch, closed, clock = simulated_day(sim)
    db = database.connect(records_url)
    done = archive.archive_day(sim, db, branch, closed, clock)
    monkeypatch.setenv("DATABASE_URL", records_url)
    export = ["export", "--branch", branch.id, "--from", closed, "--to", closed]

    assert cli.main([*export, "--what", "pages", "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == done.counts["pages"]
    distress = next(p for p in lines if p["kind"] == "distress" and not p["test"])
    trail = [entry["event"] for entry in distress["page"]["audit"]]
    assert trail[0] == "created" and "acknowledged" in trail, trail
    assert distress["alerts"] and distress["alerts"][0]["kind"] == "distress"

    out = tmp_path / "pages.csv"
    assert cli.main([*export, "--what", "pages", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text[1:])))
    assert len(table) == done.counts["pages"]
    assert {"id", "kind", "created_at", "acknowledged_by", "audit", "alerts"} <= set(table[0])
    assert any(row["message"].startswith("'=HYPERLINK") for row in table), "never a formula"

    for what, count in (("tickets", done.counts["tickets"]), ("pauses", done.counts["pauses"])):
        assert cli.main([*export, "--what", what, "--format", "jsonl"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == count
    db.dispose()


@pytest.mark.parametrize(("argv", "says"), [
    (["--from", "2026-11-02", "--to", "2026-11-01", "--what", "pages"], "before --from"),
    (["--from", "2026-11-01", "--to", "2026-11-01", "--what", "pages", "--branch", "nowhere"], "unknown branch"),
])
def test_lobby_export_refuses_what_cannot_be_and_writes_nothing(records_url, capsys, tmp_path, monkeypatch, argv,
                                                                 says):
    from services.ops import cli

    monkeypatch.setenv("DATABASE_URL", records_url)
    out = tmp_path / "out.csv"
    branch = [] if "--branch" in argv else ["--branch", "zhongnan"]
    assert cli.main(["export", *branch, *argv, "--out", str(out)]) == 2
    assert says in capsys.readouterr().err and not out.exists()


def test_lobby_export_refuses_a_day_that_is_not_a_day(capsys):
    from services.ops import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--branch", "zhongnan", "--from", "2026-13-01", "--to", "2026-12-01", "--what", "pages"])
    assert exit_.value.code == 2 and "not a day as YYYY-MM-DD" in capsys.readouterr().err


def test_a_closed_day_waits_for_its_pages_to_be_resolved_a_day_at_most(sim):
    branch, closed, clock = simulated_day(sim)
    active = archive.still_active(sim, branch, closed)
    assert active, "the distress call was acknowledged, not resolved"
    assert not archive.ready(sim, branch, closed, clock), "the next morning it waits for its pages"
    for page_id in sim.zrange(keys.pages_active(branch.id), 0, -1):
        pages.resolve(sim, branch, page_id, branch.managers[0], "done", clock=clock)
    assert archive.still_active(sim, branch, closed) == 0
    assert archive.ready(sim, branch, closed, clock)


def test_a_page_left_unresolved_holds_its_day_back_one_day_then_is_archived_as_it_stands(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    later = At(clock.now() + timedelta(days=archive.ACTIVE_GRACE_DAYS))
    assert not archive.ready(sim, branch, closed, clock)
    assert archive.ready(sim, branch, closed, later)
    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, later)
    with db.connect() as connection:
        statuses = {page["status"] for (page,) in connection.execute(select(tables.pages.c.page))}
    assert "acknowledged" in statuses, "what still ran is archived as it stood"
    db.dispose()
