"""Alembic's entry: migrate the connection that services/records/database.py hands over."""

from __future__ import annotations

from alembic import context

from services.records.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
