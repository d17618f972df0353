"""The record tables, as queries see them. `migrations/versions` creates them; a test holds the two equal.

Times are the ISO 8601 strings the live system wrote (local time with its offset, to the millisecond), kept as
they were: an auditor reads the moment the branch saw. What trends group by is stored beside them, computed
once at archiving: the local weekday and hour a ticket was issued, and the seconds it waited.

Every record table is insert-only: a trigger refuses UPDATE and DELETE (the migration), so a record, once
archived, stays as it was.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

metadata = MetaData()

TIME = String(40)  # an ISO 8601 time with its offset

days = Table(
    "days", metadata,
    Column("branch", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("archived_at", TIME, nullable=False),
    Column("tickets", Integer, nullable=False),
    Column("pauses", Integer, nullable=False),
    Column("pages", Integer, nullable=False),
    Column("page_events", Integer, nullable=False),
    Column("alerts", Integer, nullable=False),
    Column("outages", Integer, nullable=False),
    PrimaryKeyConstraint("branch", "day", name="days_pk"),
)

tickets = Table(
    "tickets", metadata,
    Column("branch", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("number", String(16), nullable=False),
    Column("category", String(32), nullable=False),  # the category it was issued in (its number's)
    Column("final_category", String(32), nullable=False),  # the line it was in last (after transfers)
    Column("status", String(16), nullable=False),
    Column("issued_at", TIME, nullable=False),
    Column("estimate_s", Integer),  # the wait it was told at issue; null: no counter open to estimate from
    Column("called_at", TIME),
    Column("counter", String(32)),
    Column("window", String(32)),
    Column("recalls", Integer, nullable=False),
    Column("recalled_at", TIME),
    Column("transfers", Integer, nullable=False),
    Column("transferred_from", String(32)),
    Column("transferred_to", String(32)),
    Column("transferred_at", TIME),
    Column("finished_at", TIME),  # served, or marked a no-show
    Column("expired_at", TIME),
    Column("wait_s", Float),  # called_at − issued_at, for a ticket that was called
    Column("weekday", Integer, nullable=False),  # 0 Monday … 6 Sunday, local
    Column("hour", Integer, nullable=False),  # local hour of issue
    PrimaryKeyConstraint("branch", "day", "number", name="tickets_pk"),
    ForeignKeyConstraint(["branch", "day"], ["days.branch", "days.day"], name="tickets_day_fk"),
)

pauses = Table(
    "pauses", metadata,
    Column("branch", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("counter", String(32), nullable=False),
    Column("since", TIME, nullable=False),
    Column("window", String(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("note", String(500)),
    Column("expected_minutes", Integer, nullable=False),
    Column("resumed_at", TIME, nullable=False),  # a pause is kept with the day it ended
    Column("actual_s", Integer, nullable=False),
    Column("alert_id", String(64)),  # the alert that paged the pause (its page is in pages)
    PrimaryKeyConstraint("branch", "day", "counter", "since", name="pauses_pk"),
    ForeignKeyConstraint(["branch", "day"], ["days.branch", "days.day"], name="pauses_day_fk"),
)

pages = Table(
    "pages", metadata,
    Column("branch", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("counter", String(32), nullable=False),
    Column("window", String(32), nullable=False),
    Column("message", String(2000), nullable=False),
    Column("test", Boolean, nullable=False),  # a drill of the silent call
    Column("created_at", TIME, nullable=False),
    Column("acknowledged_at", TIME),
    Column("acknowledged_by", String(64)),
    Column("ack_s", Float),
    Column("resolved_at", TIME),
    Column("resolved_by", String(64)),
    Column("resolution", String(16)),
    Column("resolution_note", String(2000)),
    Column("escalation_level", Integer, nullable=False),
    Column("presses", Integer, nullable=False),
    Column("repeats", Integer, nullable=False),
    Column("page", JSON, nullable=False),  # the whole page as the pager kept it (details, paged, replies, audit)
    PrimaryKeyConstraint("branch", "id", name="pages_pk"),
    ForeignKeyConstraint(["branch", "day"], ["days.branch", "days.day"], name="pages_day_fk"),
)

page_events = Table(
    "page_events", metadata,
    Column("branch", String(64), nullable=False),
    Column("page_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),  # its place in the page's audit trail, from 0
    Column("at", TIME, nullable=False),
    Column("event", String(32), nullable=False),
    Column("by", String(64)),
    Column("level", Integer),
    Column("note", String(2000)),
    PrimaryKeyConstraint("branch", "page_id", "seq", name="page_events_pk"),
    ForeignKeyConstraint(["branch", "page_id"], ["pages.branch", "pages.id"], name="page_events_page_fk"),
)

alerts = Table(
    "alerts", metadata,
    Column("branch", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("page_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("counter", String(32), nullable=False),
    Column("alert", JSON, nullable=False),  # the alert as the counter service kept it
    PrimaryKeyConstraint("branch", "id", name="alerts_pk"),
    ForeignKeyConstraint(["branch", "page_id"], ["pages.branch", "pages.id"], name="alerts_page_fk"),
)

outages = Table(
    "outages", metadata,
    Column("branch", String(64), nullable=False),
    Column("page_id", String(64), nullable=False),  # the endpoint_offline page that told of it
    Column("day", String(10), nullable=False),
    Column("endpoint_kind", String(16), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("since", TIME, nullable=False),
    Column("ended_at", TIME),
    Column("lasted_s", BigInteger),
    PrimaryKeyConstraint("branch", "page_id", name="outages_pk"),
    ForeignKeyConstraint(["branch", "page_id"], ["pages.branch", "pages.id"], name="outages_page_fk"),
)

# What trends and exports ask for: a branch's days in a range (tickets and pauses have it in their keys).
Index("pages_by_day", pages.c.branch, pages.c.day)
Index("outages_by_day", outages.c.branch, outages.c.day)

# Tables a day's archive writes, parents first; each has its rows counted against Redis before the day counts.
RECORDS = (tickets, pauses, pages, page_events, alerts, outages)
