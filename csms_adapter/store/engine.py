"""Engine construction: SQLite in WAL mode (one file, readers never block the writer), or PostgreSQL
(``postgresql+psycopg://…``, the ``postgres`` extra) for many depots in one database. The schema is brought to the
newest migration on open. Failures become ``StoreError``."""

from __future__ import annotations

from typing import Any

from alembic.util import CommandError
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from csms_adapter.store import (
    migrate,
    models,  # noqa: F401  (registers the tables on SQLModel.metadata)
)
from optimizer.errors import DepotError

BUSY_TIMEOUT_MS = 5_000


class StoreError(DepotError):
    """The database could not be opened or written; ``url`` has the password removed."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"storage {url}: {reason}")


def safe_url(url: str) -> str:
    """``url`` without its password, fit for logs and errors."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparseable storage url>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses at most the last commits
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(url: str, *, create_tables: bool = True) -> Engine:
    """Create the engine, apply the SQLite pragmas, check the connection and (``create_tables``) migrate the
    schema to the newest revision. Raises ``StoreError`` (never a driver exception) when the database cannot be
    used."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
            )
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(safe_url(url), f"cannot create engine: {exc}") from exc
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if create_tables:
            migrate.upgrade(engine)
    except (SQLAlchemyError, CommandError) as exc:
        engine.dispose()
        raise StoreError(safe_url(url), f"cannot open database: {getattr(exc, 'orig', None) or exc}") from exc
    return engine
