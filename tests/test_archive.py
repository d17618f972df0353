"""The archive: a closed day copied into the records database whole, once, checked, and read back the same.

Each test runs on SQLite and on PostgreSQL (`records_url`); the ones that need a server (a worker killed in the
middle of a transaction, the database gone at day close) run on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy
from sqlalchemy import func, select

from services.domain import alerts, held_days, keys, pages, tickets
from services.domain.branch import Branch
from services.domain.clock import business_day, parse_iso
from services.domain.contracts import PageKind, Priority
from services.pager import archive, retention
from services.pager.report import figures
from services.records import database, tables
from services.simulate import day
from services.simulate.scenario import load
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sim(own_redis: redis.Redis) -> redis.Redis:
    return own_redis


def simulated_day(r: redis.Redis) -> tuple[Branch, str, FakeClock]:
    """A simulated morning (tickets, a VIP pause that overruns, long waits) with a call of every kind besides,
    and a clock on the next morning, when the day is closed."""
    scenario = load(ROOT / "scenarios" / "vip-pause.toml").model_copy(update={"seed": 7})
    branch = scenario.load_branch()
    simulation = day.Simulation(r, branch, scenario)
    happened = simulation.run()
    moment = simulation.clock.now()
    clock = FakeClock(moment)
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
    tickets.close_past_days(r, branch, clock)  # the watch closes the day after midnight
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
    later = FakeClock(clock.now() + timedelta(days=branch.redis_days + 1))
    assert retention.remove_archived_days(sim, branch, later) == [], "never a day not archived"
    assert sim.exists(keys.ticket(branch.id, closed, "V001"))
    assert held_days.lag(sim, branch, later).days == 1

    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, clock)
    assert retention.remove_archived_days(sim, branch, clock) == [], "within redis_days Redis keeps it"
    assert retention.still_active(sim, branch, closed)
    assert retention.remove_archived_days(sim, branch, later) == [], "a page still running keeps its day"
    for page_id in sim.zrange(keys.pages_active(branch.id), 0, -1):
        pages.resolve(sim, branch, page_id, branch.managers[0], "done", clock=later)
    events = select(func.count()).select_from(tables.page_events).where(tables.page_events.c.event == "resolved")
    with db.connect() as connection:
        resolved_before = connection.execute(events).scalar_one()
    added = []
    assert retention.remove_archived_days(
        sim, branch, later, before=lambda d: added.append(archive.append_late_events(sim, db, branch, d))) == [closed]
    with db.connect() as connection:
        assert connection.execute(events).scalar_one() > resolved_before, "the trail gained the late resolutions"
    assert added and added[0] > 0
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
    same_day = FakeClock(parse_iso(f"{closed}T18:00:00+08:00"))
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
    active = retention.still_active(sim, branch, closed)
    assert active, "the distress call was acknowledged, not resolved"
    assert not archive.ready(sim, branch, closed, clock), "the next morning it waits for its pages"
    for page_id in sim.zrange(keys.pages_active(branch.id), 0, -1):
        pages.resolve(sim, branch, page_id, branch.managers[0], "done", clock=clock)
    assert retention.still_active(sim, branch, closed) == 0
    assert archive.ready(sim, branch, closed, clock)


def test_a_page_left_unresolved_holds_its_day_back_one_day_then_is_archived_as_it_stands(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    later = FakeClock(clock.now() + timedelta(days=archive.ACTIVE_GRACE_DAYS))
    assert not archive.ready(sim, branch, closed, clock)
    assert archive.ready(sim, branch, closed, later)
    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, later)
    with db.connect() as connection:
        statuses = {page["status"] for (page,) in connection.execute(select(tables.pages.c.page))}
    assert "acknowledged" in statuses, "what still ran is archived as it stood"
    db.dispose()


def test_a_day_redis_never_closed_is_refused_and_nothing_is_written(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    db = database.connect(records_url)
    never = (date.fromisoformat(closed) - timedelta(days=30)).isoformat()
    with pytest.raises(ValueError, match="no closed day"):
        archive.archive_day(sim, db, branch, never, clock)
    assert archive.stored_counts(db, branch.id, never) is None and not held_days.is_archived(sim, branch, never)
    db.dispose()


def test_a_day_with_pages_and_no_ticket_closes_and_is_archived(own_redis, records_url, branch):
    sunday = FakeClock(parse_iso("2026-11-29T10:00:00+08:00"))
    request = alerts.page_request(branch, None, PageKind.ENDPOINT_OFFLINE, Priority.NORMAL, "lobby display offline",
                                  {"endpoint_kind": "display", "endpoint": "lobby",
                                   "offline_since": "2026-11-29T09:58:00.000+08:00"}, sunday.now())
    alerts.raise_alert(own_redis, request)
    pages.create(own_redis, branch, request, sunday)
    monday = FakeClock(parse_iso("2026-11-30T09:00:00+08:00"))
    tickets.close_past_days(own_redis, branch, monday)
    assert held_days.waiting(own_redis, branch) == ["2026-11-29"]
    db = database.connect(records_url)
    done = archive.archive_day(own_redis, db, branch, "2026-11-29", monday)
    assert (done.counts["tickets"], done.counts["pages"], done.counts["outages"]) == (0, 1, 1)
    db.dispose()


def test_a_pause_running_over_midnight_is_kept_once_with_the_day_it_ended(own_redis, records_url, branch):
    from services.domain.contracts import PageRequest
    from services.domain.desk import Desk

    evening = FakeClock(parse_iso("2026-11-27T17:50:00+08:00"))
    desk = Desk(own_redis, branch, "3", evening)
    desk.pause("review", 15, "overnight")
    (staged,) = own_redis.hvals(keys.outbox(branch.id))
    pages.create(own_redis, branch, PageRequest.model_validate_json(staged), evening)  # the pause's page, that evening
    next_day = FakeClock(parse_iso("2026-11-28T09:00:00+08:00"))
    tickets.close_past_days(own_redis, branch, next_day)
    db = database.connect(records_url)
    first = archive.archive_day(own_redis, db, branch, "2026-11-27", next_day)
    assert first.counts["pauses"] == 0, "still running: it belongs to the day it ends"
    desk.clock = next_day
    desk.resume()
    day_after = FakeClock(parse_iso("2026-11-29T09:00:00+08:00"))
    tickets.close_past_days(own_redis, branch, day_after)
    second = archive.archive_day(own_redis, db, branch, "2026-11-28", day_after)
    assert second.counts["pauses"] == 1
    with db.connect() as connection:
        (kept,) = connection.execute(select(tables.pauses)).mappings().all()
    assert kept["since"].startswith("2026-11-27T17:50") and kept["actual_s"] == 15 * 3600 + 10 * 60
    assert kept["alert_id"], "linked to the page that told of it"
    db.dispose()


def test_a_replace_or_an_upsert_cannot_rewrite_a_record(sim, records_url):
    branch, closed, clock = simulated_day(sim)
    db = database.connect(records_url)
    archive.archive_day(sim, db, branch, closed, clock)
    before = rows(db)
    keyed = f"'{branch.id}', '{closed}'"
    statements = [f"UPDATE days SET tickets = 0 WHERE branch = '{branch.id}'"]
    if db.dialect.name == "sqlite":
        statements += [f"REPLACE INTO days VALUES ({keyed}, 'x', 0, 0, 0, 0, 0, 0)",
                       f"INSERT OR REPLACE INTO days VALUES ({keyed}, 'x', 0, 0, 0, 0, 0, 0)"]
    else:
        statements += [f"INSERT INTO days VALUES ({keyed}, 'x', 0, 0, 0, 0, 0, 0) "
                       "ON CONFLICT (branch, day) DO UPDATE SET tickets = 0"]
    for statement in statements:
        with pytest.raises(sqlalchemy.exc.DatabaseError, match="insert-only"), db.begin() as connection:
            connection.execute(sqlalchemy.text(statement))
    assert rows(db) == before
    db.dispose()


def test_the_services_role_may_read_and_insert_records_and_nothing_else(postgres_url):
    """On PostgreSQL the tables belong to the role that migrates; the services' role cannot drop the triggers."""
    role = f"lobby_test_app_{uuid.uuid4().hex[:8]}"
    owner = database.connect(postgres_url, poolclass=sqlalchemy.pool.NullPool)
    with owner.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE ROLE {role} LOGIN"))
    try:
        database.migrate(owner, grant_to=role)
        url = sqlalchemy.engine.make_url(postgres_url).set(username=role)
        app = database.connect(url.render_as_string(hide_password=False), poolclass=sqlalchemy.pool.NullPool)
        with app.begin() as connection:
            connection.execute(sqlalchemy.insert(tables.days).values(
                branch="b", day="2026-11-01", archived_at="t", tickets=0, pauses=0, pages=0, page_events=0,
                alerts=0, outages=0))
            assert connection.execute(select(func.count()).select_from(tables.days)).scalar_one() == 1
        for statement in ("ALTER TABLE days DISABLE TRIGGER USER", "DROP TRIGGER days_insert_only ON days",
                          "ALTER TABLE days ALTER COLUMN tickets TYPE bigint", "TRUNCATE days CASCADE"):
            with (pytest.raises(sqlalchemy.exc.DatabaseError, match=r"owner|permission denied|insert-only"),
                  app.begin() as connection):
                connection.execute(sqlalchemy.text(statement))
        with app.connect() as connection:
            assert connection.execute(select(tables.days.c.tickets)).scalar_one() == 0
        app.dispose()
    finally:
        with owner.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP OWNED BY {role}"))
            connection.execute(sqlalchemy.text(f"DROP ROLE {role}"))
        owner.dispose()


@pytest.mark.parametrize(("url", "says"), [
    ("mysql://nobody@127.0.0.1/none", "cannot migrate the records database"),
    ("sqlite:////proc/lobby/records.db", "cannot migrate the records database"),
    ("postgresql://nobody@127.0.0.1:1/none", "cannot migrate the records database"),
])
def test_lobby_migrate_says_why_a_database_cannot_be_used(url, says, capsys):
    from services.ops import cli

    assert cli.main(["migrate", "--database", url]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_lobby_export_from_a_database_it_cannot_read_leaves_the_file_it_would_replace(tmp_path, capsys):
    from services.ops import cli

    kept = tmp_path / "keep.csv"
    kept.write_text("yesterday's export\n", encoding="utf-8")
    for url in ("postgresql://nobody@127.0.0.1:1/none", f"sqlite:///{tmp_path}/missing/records.db"):
        assert cli.main(["export", "--branch", "zhongnan", "--from", "2026-11-01", "--to", "2026-11-02",
                         "--what", "pages", "--database", url, "--out", str(kept)]) == 2
        assert "cannot export" in capsys.readouterr().err
    assert kept.read_text(encoding="utf-8") == "yesterday's export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"], "no folder, no database, no stray file"


def test_an_archived_day_asked_for_while_the_database_is_down_is_a_503_that_says_so(r, ctx, token):
    from services.pager.app import create_app
    from services.runtime.settings import Context
    from tests.conftest import BRANCH, bearer

    r.hset(keys.archived(BRANCH), "2026-11-02", "{}")
    down = Context(ctx.settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/none"}),
                   ctx.branches)
    pager = create_app({"TESTING": True, "CONTEXT": down}).test_client()
    device = bearer(token("device", "lobby-manager"))
    response = pager.get(f"/api/v1/branches/{BRANCH}/report?date=2026-11-02", headers=device)
    assert response.status_code == 503 and response.json["error"]["code"] == "unavailable"
    assert "records database" in response.json["error"]["message"] and int(response.headers["Retry-After"]) > 0
    today = pager.get(f"/api/v1/branches/{BRANCH}/report", headers=device)
    assert today.status_code == 200, "a day Redis holds is read without the database"
