"""The records database a process is told of, its engine, and migrating it to the tables this code reads.

`DATABASE_URL` names it, as SQLAlchemy writes URLs: `postgresql://user@host/db` (driven by psycopg 3) in
production, or `sqlite:///path/lobby.db`, which `lobby up` uses under var/ when none is given. A process with
no database archives nothing, and Redis then keeps every day for the branch's history_days.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from services.records import tables


def sqlite_url(path: Path) -> str:
    """Return the URL of a SQLite database file (made absolute: a process may run from another folder)."""
    return f"sqlite:///{Path(path).resolve()}"


def normalize(url: str) -> str:
    """Name psycopg 3 as the driver of a plain postgresql:// URL (SQLAlchemy's default is psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class NoDatabase(RuntimeError):
    """A SQLite records database that does not exist, asked for by one that only reads (an export)."""


def connect(url: str, *, create: bool = True, **kwargs: Any) -> Engine:
    """Return a new engine for a database URL (SQLite: foreign keys on, write-ahead log, a busy wait, and
    triggers fired by the deletes a REPLACE makes, so that it too meets the insert-only rule).

    With create false, a SQLite file that does not exist raises NoDatabase rather than being made.
    """
    url = normalize(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            if not create and not Path(path).is_file():
                raise NoDatabase(f"no records database at {path}")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA recursive_triggers = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


@cache
def engine(url: str) -> Engine:
    """Return this process's engine for a database URL, made once."""
    return connect(url)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("services.records") / "migrations"))
    return config


# Taken for a migration's transaction on PostgreSQL, so that services starting together migrate one at a time.
MIGRATION_LOCK = 0x10BB7


def migrate(db: Engine, grant_to: str | None = None) -> None:
    """Bring the database to the newest tables (Alembic's `upgrade head`); nothing when it is there already.

    With grant_to (PostgreSQL), that role may then read the records and insert new ones, and nothing else: the
    services connect as it, and the migrating role owns the tables (an owner could drop the insert-only
    triggers; the services' role cannot).
    """
    config = _config()
    with db.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        if grant_to is not None:
            if connection.dialect.name != "postgresql":
                raise ValueError("roles are PostgreSQL's: a SQLite file has no users to grant to")
            role = connection.dialect.identifier_preparer.quote(grant_to)
            connection.execute(text(f"GRANT USAGE ON SCHEMA {_schema(connection)} TO {role}"))
            names = ", ".join(table.name for table in (tables.days, *tables.RECORDS))
            connection.execute(text(f"GRANT SELECT, INSERT ON {names} TO {role}"))
            connection.execute(text(f"GRANT SELECT ON alembic_version TO {role}"))


def _schema(connection: Any) -> str:
    name = connection.execute(text("SELECT current_schema()")).scalar_one()
    return connection.dialect.identifier_preparer.quote(name)


def head() -> str:
    """Return the newest migration's revision."""
    head_revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert head_revision is not None
    return head_revision


def current(db: Engine) -> str | None:
    """Return the revision the database is at (None: never migrated)."""
    with db.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
