"""The records of closed days: days, tickets, pauses, pages with their audit trail and alerts, outages.

Every record table is insert-only: a trigger refuses UPDATE, DELETE (and, on PostgreSQL, TRUNCATE), so the
application's own database user cannot change a record once archived.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.String(40)
TABLES = ("days", "tickets", "pauses", "pages", "page_events", "alerts", "outages")


def upgrade() -> None:
    op.create_table(
        "days",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("archived_at", TIME, nullable=False),
        sa.Column("tickets", sa.Integer, nullable=False),
        sa.Column("pauses", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("page_events", sa.Integer, nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False),
        sa.Column("outages", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("branch", "day", name="days_pk"),
    )
    op.create_table(
        "tickets",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("final_category", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", TIME, nullable=False),
        sa.Column("estimate_s", sa.Integer),
        sa.Column("called_at", TIME),
        sa.Column("counter", sa.String(32)),
        sa.Column("window", sa.String(32)),
        sa.Column("recalls", sa.Integer, nullable=False),
        sa.Column("recalled_at", TIME),
        sa.Column("transfers", sa.Integer, nullable=False),
        sa.Column("transferred_from", sa.String(32)),
        sa.Column("transferred_to", sa.String(32)),
        sa.Column("transferred_at", TIME),
        sa.Column("finished_at", TIME),
        sa.Column("expired_at", TIME),
        sa.Column("wait_s", sa.Float),
        sa.Column("weekday", sa.Integer, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("branch", "day", "number", name="tickets_pk"),
        sa.ForeignKeyConstraint(["branch", "day"], ["days.branch", "days.day"], name="tickets_day_fk"),
    )
    op.create_table(
        "pauses",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("counter", sa.String(32), nullable=False),
        sa.Column("since", TIME, nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("note", sa.String(500)),
        sa.Column("expected_minutes", sa.Integer, nullable=False),
        sa.Column("resumed_at", TIME, nullable=False),
        sa.Column("actual_s", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.String(64)),
        sa.PrimaryKeyConstraint("branch", "day", "counter", "since", name="pauses_pk"),
        sa.ForeignKeyConstraint(["branch", "day"], ["days.branch", "days.day"], name="pauses_day_fk"),
    )
    op.create_table(
        "pages",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("counter", sa.String(32), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("message", sa.String(2000), nullable=False),
        sa.Column("test", sa.Boolean, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("acknowledged_at", TIME),
        sa.Column("acknowledged_by", sa.String(64)),
        sa.Column("ack_s", sa.Float),
        sa.Column("resolved_at", TIME),
        sa.Column("resolved_by", sa.String(64)),
        sa.Column("resolution", sa.String(16)),
        sa.Column("resolution_note", sa.String(2000)),
        sa.Column("escalation_level", sa.Integer, nullable=False),
        sa.Column("presses", sa.Integer, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
        sa.Column("page", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("branch", "id", name="pages_pk"),
        sa.ForeignKeyConstraint(["branch", "day"], ["days.branch", "days.day"], name="pages_day_fk"),
    )
    op.create_table(
        "page_events",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("page_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("by", sa.String(64)),
        sa.Column("level", sa.Integer),
        sa.Column("note", sa.String(2000)),
        sa.PrimaryKeyConstraint("branch", "page_id", "seq", name="page_events_pk"),
        sa.ForeignKeyConstraint(["branch", "page_id"], ["pages.branch", "pages.id"], name="page_events_page_fk"),
    )
    op.create_table(
        "alerts",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("page_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("counter", sa.String(32), nullable=False),
        sa.Column("alert", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("branch", "id", name="alerts_pk"),
        sa.ForeignKeyConstraint(["branch", "page_id"], ["pages.branch", "pages.id"], name="alerts_page_fk"),
    )
    op.create_table(
        "outages",
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("page_id", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("endpoint_kind", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("since", TIME, nullable=False),
        sa.Column("ended_at", TIME),
        sa.Column("lasted_s", sa.BigInteger),
        sa.PrimaryKeyConstraint("branch", "page_id", name="outages_pk"),
        sa.ForeignKeyConstraint(["branch", "page_id"], ["pages.branch", "pages.id"], name="outages_page_fk"),
    )
    # What trends and exports ask for: a branch's days in a range.
    op.create_index("pages_by_day", "pages", ["branch", "day"])
    op.create_index("outages_by_day", "outages", ["branch", "day"])
    _insert_only()


def _insert_only() -> None:
    """Refuse UPDATE and DELETE on every record table, whoever asks (the owner can drop the trigger)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION lobby_records_insert_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'lobby records are insert-only: % on % refused', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$""")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_insert_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION lobby_records_insert_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION lobby_records_insert_only()")
    else:
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} BEGIN "
                           f"SELECT RAISE(ABORT, 'lobby records are insert-only: {operation} on {table} refused'); "
                           "END")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION lobby_records_insert_only()")
