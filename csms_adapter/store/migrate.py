"""Schema migrations (Alembic) run when a store is opened: a new database is created at the newest schema, an
older one is upgraded in place. A database made before migrations existed (depotctl 0.1: tables, no
``alembic_version``) is recognised and upgraded from the baseline."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise in depotctl logs

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(_config(None))  # type: ignore[arg-type]
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Many controllers may start at once against one server: one migrates, the others wait for it.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('depotctl-migrations'))"))
        config = _config(conn)
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "chargers" in tables:
            command.stamp(config, BASELINE)  # a 0.1 database: its tables are the baseline's
        command.upgrade(config, "head")
