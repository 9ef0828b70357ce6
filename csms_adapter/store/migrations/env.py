"""Alembic environment of depotctl's store. Migrations run from ``csms_adapter.store.migrate`` on the engine the
controller already opened (passed in ``config.attributes["connection"]``), never from an alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from csms_adapter.store import models  # noqa: F401  (registers the tables)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
