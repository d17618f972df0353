"""The archive: each closed business day of a branch copied from Redis into the records database.

- A day closes when the counter worker's watch expires its last waiting tickets (tickets.close_past_days); it
  then joins the branch's closed days (keys.closed_days). Every minute the pager worker enqueues an RQ job
  (`ARCHIVE_DAY`, one job id per branch and day, with retries) for each closed day not archived yet whose
  pages are all resolved, or which is older than ACTIVE_GRACE_DAYS (what still runs is then archived as it
  stands); `lobby archive` runs one by hand, whatever its pages.
- One transaction writes the day: its row in `days`, every ticket with its history, every pause, every page
  with its audit trail and alerts, and the outages supervision paged. Before it commits, the rows of each table
  are counted in the database and checked against what was read from Redis; a mismatch rolls it all back. A
  process killed mid-way leaves nothing, and a day already in `days` is never written again: archiving is
  idempotent per (branch, day), and two jobs at once write it once (the second meets the primary key).
- After the commit, Redis notes the day as archived (keys.archived): the report then reads it from the
  database, and retention may remove it from Redis once it is older than the branch's redis_days.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import redis
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from services.domain import held_days, keys
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day, local_iso, parse_iso
from services.domain.contracts import ARCHIVE_DAY, ArchiveDay, PageKind
from services.domain.pages import is_test
from services.domain.schemas import Page
from services.pager import retention
from services.pager.report.days import seconds_between
from services.pager.report.reads import CALLED, read_pages, read_pauses, read_ticket_hashes
from services.records import database, tables
from services.runtime import messages
from services.runtime.worker import context

log = logging.getLogger("lobby.archive")

# An archive that fails (the database down) is tried again after these delays, then every minute by the
# pager worker's look for closed days not archived (enqueue_due).
RETRY = Retry(max=4, interval=[10, 30, 60, 120])
# A closed day waits for the pages created on it to be resolved (a call acknowledged at closing time is often
# resolved the next morning) for up to this many days after it; then it is archived as it stands.
ACTIVE_GRACE_DAYS = 1


class CountMismatch(RuntimeError):
    """The rows written for a day are not the rows read from Redis: the transaction is rolled back."""


@dataclass
class DayRows:
    """A closed day's rows for each record table, as read from Redis."""

    branch: str
    day: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {table.name: len(self.rows.get(table.name, [])) for table in tables.RECORDS}


@dataclass(frozen=True)
class Archived:
    """What archiving a day did: `written` false when the database held the day already."""

    branch: str
    day: str
    written: bool
    counts: dict[str, int]


def read_day(r: redis.Redis, branch: Branch, day: str, clock: Clock = SYSTEM) -> DayRows:
    """Read a day's records from Redis as the rows the database keeps."""
    found = DayRows(branch.id, day)
    found.rows["tickets"] = [_ticket_row(branch, day, category, number, raw)
                             for category, number, raw in read_ticket_hashes(r, branch, day)]
    # A pause still running belongs to the day it ends, whose pauses record it whole.
    found.rows["pauses"] = [{"branch": branch.id, "day": day, "counter": p.counter, "since": p.since,
                             "window": p.window, "reason": p.reason, "note": p.note,
                             "expected_minutes": p.expected_minutes, "resumed_at": p.resumed_at,
                             "actual_s": p.actual_s, "alert_id": p.alert_id}
                            for p in read_pauses(r, branch, day, clock.now()) if p.resumed_at is not None]
    pages = read_pages(r, branch, day)
    found.rows["pages"] = [_page_row(branch, day, p) for p in pages]
    found.rows["page_events"] = [{"branch": branch.id, "page_id": p.id, "seq": n, "at": e.at, "event": e.event,
                                  "by": e.by, "level": e.level, "note": e.note}
                                 for p in pages for n, e in enumerate(p.audit)]
    found.rows["alerts"] = _alert_rows(r, branch, pages)
    found.rows["outages"] = [_outage_row(branch, day, p, clock.now()) for p in pages
                             if p.kind == PageKind.ENDPOINT_OFFLINE]
    return found


def _ticket_row(branch: Branch, day: str, category: str, number: str, raw: dict[str, str]) -> dict[str, Any]:
    issued = parse_iso(raw["issued_at"]).astimezone(branch.zone)
    status = raw.get("status", "waiting")
    called_at = raw.get("called_at") or None
    waited = seconds_between(raw["issued_at"], called_at) if called_at and status in CALLED else None
    return {
        "branch": branch.id, "day": day, "number": number, "category": category,
        "final_category": raw.get("category") or category, "status": status, "issued_at": raw["issued_at"],
        "estimate_s": int(raw["estimate_s"]) if raw.get("estimate_s") else None,
        "called_at": called_at, "counter": raw.get("counter") or None, "window": raw.get("window") or None,
        "recalls": int(raw.get("recalls") or 0), "recalled_at": raw.get("recalled_at") or None,
        "transfers": int(raw.get("transfers") or 0),
        "transferred_from": raw.get("transferred_from") or None, "transferred_to": raw.get("to_counter") or None,
        "transferred_at": raw.get("transferred_at") or None, "finished_at": raw.get("served_at") or None,
        "expired_at": raw.get("expired_at") or None, "wait_s": waited,
        "weekday": issued.weekday(), "hour": issued.hour,
    }


def _page_row(branch: Branch, day: str, page: Page) -> dict[str, Any]:
    ack = seconds_between(page.created_at, page.acknowledged_at) if page.acknowledged_at else None
    return {
        "branch": branch.id, "id": page.id, "day": day, "kind": str(page.kind), "priority": str(page.priority),
        "counter": page.counter, "window": page.window, "message": page.message, "test": is_test(page),
        "created_at": page.created_at, "acknowledged_at": page.acknowledged_at,
        "acknowledged_by": page.acknowledged_by, "ack_s": ack, "resolved_at": page.resolved_at,
        "resolved_by": page.resolved_by, "resolution": page.resolution, "resolution_note": page.resolution_note,
        "escalation_level": page.escalation_level, "presses": page.presses, "repeats": page.repeats,
        "page": page.model_dump(mode="json"),
    }


def _alert_rows(r: redis.Redis, branch: Branch, pages: list[Page]) -> list[dict[str, Any]]:
    wanted = [(p.id, str(a)) for p in pages for a in dict.fromkeys(p.details.get("alert_ids") or [])]
    pipe = r.pipeline(transaction=False)
    for _, alert_id in wanted:
        pipe.hgetall(keys.alert(branch.id, alert_id))
    rows, seen = [], set()
    for (page_id, alert_id), raw in zip(wanted, pipe.execute() if wanted else [], strict=True):
        if not raw or alert_id in seen:
            continue
        seen.add(alert_id)
        rows.append({"branch": branch.id, "id": alert_id, "page_id": page_id, "kind": raw.get("kind", ""),
                     "counter": raw.get("counter", ""), "alert": raw})
    return rows


def _outage_row(branch: Branch, day: str, page: Page, now: datetime) -> dict[str, Any]:
    since = str(page.details.get("offline_since") or page.created_at)
    ended = page.resolved_at
    return {"branch": branch.id, "page_id": page.id, "day": day,
            "endpoint_kind": str(page.details.get("endpoint_kind") or ""),
            "endpoint": str(page.details.get("endpoint") or ""), "since": since, "ended_at": ended,
            "lasted_s": round(seconds_between(since, ended)) if ended else None}


def write_day(db: Engine, found: DayRows, archived_at: str) -> Archived:
    """Write a day's rows in one transaction, checked by count before it commits; nothing if already there (the
    primary key of `days` refuses its first row)."""
    expected = found.counts()
    try:
        with db.begin() as connection:
            connection.execute(insert(tables.days), [{"branch": found.branch, "day": found.day,
                                                      "archived_at": archived_at, **expected}])
            for table in tables.RECORDS:
                if found.rows.get(table.name):
                    connection.execute(insert(table), found.rows[table.name])
            written = _count(connection, found.branch, found.day)
            if written != expected:
                raise CountMismatch(f"{found.branch} {found.day}: wrote {written}, read {expected} from Redis")
    except IntegrityError:
        # The day is there already (archived before, or by another archive that committed first): once.
        if (held := stored_counts(db, found.branch, found.day)) is not None:
            return Archived(found.branch, found.day, False, held)
        raise
    return Archived(found.branch, found.day, True, expected)


def _count(connection: Any, branch: str, day: str) -> dict[str, int]:
    t = tables
    pages_of_day = select(t.pages.c.id).where(t.pages.c.branch == branch, t.pages.c.day == day)
    by_day = {table.name: select(func.count()).select_from(table).where(table.c.branch == branch,
                                                                         table.c.day == day)
              for table in (t.tickets, t.pauses, t.pages, t.outages)}
    by_page = {table.name: select(func.count()).select_from(table).where(table.c.branch == branch,
                                                                          table.c.page_id.in_(pages_of_day))
               for table in (t.page_events, t.alerts)}
    queries = {**by_day, **by_page}
    return {table.name: connection.execute(queries[table.name]).scalar_one() for table in tables.RECORDS}


def stored_counts(db: Engine, branch: str, day: str) -> dict[str, int] | None:
    """Return the row counts the database holds for an archived day, or None for a day it does not hold."""
    with db.connect() as connection:
        row = connection.execute(select(tables.days).where(tables.days.c.branch == branch,
                                                           tables.days.c.day == day)).mappings().first()
    return None if row is None else {table.name: row[table.name] for table in tables.RECORDS}


def archive_day(r: redis.Redis, db: Engine, branch: Branch, day: str, clock: Clock = SYSTEM) -> Archived:
    """Archive one closed day of a branch (idempotent), then note in Redis that the database holds it.

    Raises ValueError for a day that is not closed: today's, one whose end the watch has not closed yet, or one
    Redis does not hold.
    """
    held = stored_counts(db, branch.id, day)
    if held is None:
        today = business_day(branch, clock.now())
        if day >= today:
            raise ValueError(f"{day} is not closed yet in branch {branch.id} (today is {today})")
        if not r.sismember(keys.closed_days(branch.id), day):
            raise ValueError(f"Redis holds no closed day {day} of branch {branch.id}: a day is archived once the "
                             "watch has closed it (the counter worker, after midnight)")
    done = write_day(db, read_day(r, branch, day, clock), local_iso(branch, clock.now())) if held is None \
        else Archived(branch.id, day, False, held)
    r.hset(keys.archived(branch.id), day, json.dumps({"at": local_iso(branch, clock.now()), **done.counts}))
    if done.written:
        log.info("archived %s of branch %s: %s", day, branch.id, done.counts)
    return done


def archive_job(payload: dict[str, Any]) -> dict[str, Any]:
    """RQ job: archive one closed day of a branch into the worker's records database."""
    request = ArchiveDay.model_validate(payload)
    ctx = context()
    if not ctx.settings.database_url:
        raise RuntimeError("no records database (DATABASE_URL) for the archive")
    if request.branch not in ctx.branches:  # a branch taken out of the branch file: nothing to do, no retry
        log.warning("archive of %s for branch %s, which the branch file no longer has: skipped", request.day,
                    request.branch)
        return {"branch": request.branch, "day": request.day, "skipped": "unknown branch"}
    done = archive_day(ctx.for_branch(request.branch), database.engine(ctx.settings.database_url),
                       ctx.branches[request.branch], request.day)
    return {"branch": done.branch, "day": done.day, "written": done.written, **done.counts}


def append_late_events(r: redis.Redis, db: Engine, branch: Branch, day: str) -> int:
    """Add to the database the audit entries the day's pages gained after the day was archived (an
    acknowledgement, a resolution), as new page_events rows; return how many. Rows are only ever inserted."""
    found = read_pages(r, branch, day)
    if not found:
        return 0
    with db.begin() as connection:
        kept = dict(connection.execute(
            select(tables.page_events.c.page_id, func.count()).where(
                tables.page_events.c.branch == branch.id,
                tables.page_events.c.page_id.in_([p.id for p in found])).group_by(tables.page_events.c.page_id)
        ).all())
        archived = set(connection.execute(select(tables.pages.c.id).where(
            tables.pages.c.branch == branch.id, tables.pages.c.day == day)).scalars())
        late = [{"branch": branch.id, "page_id": p.id, "seq": n, "at": e.at, "event": e.event, "by": e.by,
                 "level": e.level, "note": e.note}
                for p in found if p.id in archived for n, e in enumerate(p.audit) if n >= kept.get(p.id, 0)]
        if late:
            connection.execute(insert(tables.page_events), late)
    if late:
        log.info("added %d late audit entries to %s of branch %s", len(late), day, branch.id)
    return len(late)


def job_id(branch_id: str, day: str) -> str:
    return f"archive-{branch_id}-{day}"


def ready(r: redis.Redis, branch: Branch, day: str, clock: Clock = SYSTEM) -> bool:
    """Say whether a closed day is ready to archive: every page created on it is resolved, so its records are
    whole; or it is older than ACTIVE_GRACE_DAYS, and what still runs is archived as it stands."""
    today = date.fromisoformat(business_day(branch, clock.now()))
    if date.fromisoformat(day) < today - timedelta(days=ACTIVE_GRACE_DAYS):
        return True
    return retention.still_active(r, branch, day) == 0


def enqueue_due(r: redis.Redis, rq_connection: redis.Redis, branches: list[Branch], clock: Clock = SYSTEM) -> int:
    """Enqueue an archive job for each closed day not archived, ready, and not already queued, running or
    waiting to be retried; return how many."""
    enqueued = 0
    for branch in branches:
        for day in (d for d in held_days.waiting(r, branch) if ready(r, branch, d, clock)):
            name = job_id(branch.id, day)
            try:
                status = Job.fetch(name, connection=rq_connection).get_status()
            except NoSuchJobError:
                status = None
            if status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
                continue
            messages.enqueue(rq_connection, ARCHIVE_DAY, ArchiveDay(branch=branch.id, day=day), job_id=name,
                             retry=RETRY)
            enqueued += 1
    return enqueued
