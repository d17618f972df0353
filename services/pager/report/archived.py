"""A day's tickets, pauses and pages read back from the records database, as the report reads them from Redis.

A day is read from the database once Redis notes it archived (keys.archived): from then on the database holds
it whole, and Redis may already have removed it (services/pager/retention.py).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import Engine, select

from services.domain.branch import Branch
from services.domain.clock import parse_iso
from services.domain.schemas import Page
from services.pager.report.reads import DayRecords, PauseRecord, TicketRecord
from services.records import database, tables


def app_database() -> Engine | None:
    """Return the records database of the running web app, or None when it has none."""
    url = current_app.extensions["lobby"].settings.database_url
    return database.engine(url) if url else None


def read_day(db: Engine, branch: Branch, day: str) -> DayRecords:
    """Read an archived day's records, in the order the report reads them from Redis."""
    t = tables
    with db.connect() as connection:
        ticket_rows = connection.execute(
            select(t.tickets.c.number, t.tickets.c.category, t.tickets.c.status, t.tickets.c.issued_at,
                   t.tickets.c.called_at, t.tickets.c.window)
            .where(t.tickets.c.branch == branch.id, t.tickets.c.day == day)).all()
        pause_rows = connection.execute(
            select(t.pauses).where(t.pauses.c.branch == branch.id, t.pauses.c.day == day)).mappings().all()
        page_rows = connection.execute(
            select(t.pages.c.page).where(t.pages.c.branch == branch.id, t.pages.c.day == day)).all()
    order = {c.id: n for n, c in enumerate(branch.categories)}
    found_tickets = sorted((TicketRecord(number=row.number, category=row.category, status=row.status,
                                         issued_at=row.issued_at, called_at=row.called_at, window=row.window)
                            for row in ticket_rows),
                           key=lambda t: (order.get(t.category, len(order)), len(t.number), t.number))
    found_pauses = [PauseRecord(counter=p["counter"], window=p["window"], reason=p["reason"], note=p["note"],
                                since=p["since"], resumed_at=p["resumed_at"],
                                expected_minutes=p["expected_minutes"], actual_s=p["actual_s"])
                    for p in pause_rows]
    found_pages = [Page.model_validate(row.page) for row in page_rows]
    found_pauses.sort(key=lambda pause: parse_iso(pause.since))
    found_pages.sort(key=lambda page: page.created_at)
    return DayRecords(tickets=found_tickets, pauses=found_pauses, pages=found_pages)
