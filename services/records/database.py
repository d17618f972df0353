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
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def sqlite_url(path: Path) -> str:
    """Return the URL of a SQLite database file (made absolute: a process may run from another folder)."""
    return f"sqlite:///{Path(path).resolve()}"


def normalize(url: str) -> str:
    """Name psycopg 3 as the driver of a plain postgresql:// URL (SQLAlchemy's default is psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def connect(url: str, **kwargs: Any) -> Engine:
    """Return a new engine for a database URL (SQLite: foreign keys on, write-ahead log, a busy wait)."""
    url = normalize(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
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


def migrate(db: Engine) -> None:
    """Bring the database to the newest tables (Alembic's `upgrade head`); nothing when it is there already."""
    config = _config()
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head() -> str:
    """Return the newest migration's revision."""
    head_revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert head_revision is not None
    return head_revision


def current(db: Engine) -> str | None:
    """Return the revision the database is at (None: never migrated)."""
    with db.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
