"""Many depots in one database: a ``site`` column on every table, the ``sites`` table for the fleet view, and
one-minute aggregates of meter samples for retention.

Rows that existed before get ``site = ''``; the first controller that opens the database claims them.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _site() -> sa.Column[str]:
    return sa.Column("site", sa.String(64), nullable=False, server_default="")


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String()),
        sa.Column("chargers_configured", sa.Integer(), nullable=False),
        sa.Column("limit_kw", sa.Float()),
        sa.Column("power_kw", sa.Float()),
        sa.Column("started_at", TS),
        sa.Column("last_seen_at", TS),
        sa.PrimaryKeyConstraint("site"),
    )
    op.create_table(
        "meter_minutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("measurand", sa.String(64), nullable=False),
        sa.Column("phase", sa.String()),
        sa.Column("unit", sa.String()),
        sa.Column("minute", TS, nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=False),
        sa.Column("maximum", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_meter_minutes_site", "meter_minutes", ["site"])
    op.create_index("ix_minutes_site_connector_time", "meter_minutes", ["site", "charger_id", "connector_id", "minute"])

    # chargers and connectors get composite keys (site first). Copy them into new tables rather than altering
    # keys in place: primary-key and foreign-key names differ between SQLite and PostgreSQL databases.
    op.create_table(
        "chargers_v2",
        sa.Column("site", sa.String(64), nullable=False, server_default=""),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ocpp_version", sa.String()),
        sa.Column("vendor", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("firmware", sa.String()),
        sa.Column("last_boot_at", TS),
        sa.Column("last_seen_at", TS),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("site", "id", name="pk_chargers_site_id"),
    )
    op.execute("INSERT INTO chargers_v2 (site, id, ocpp_version, vendor, model, firmware, last_boot_at, last_seen_at,"
               " connected) SELECT '', id, ocpp_version, vendor, model, firmware, last_boot_at, last_seen_at, connected"
               " FROM chargers")
    op.create_table(
        "connectors_v2",
        sa.Column("site", sa.String(64), nullable=False, server_default=""),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String()),
        sa.Column("updated_at", TS),
        sa.PrimaryKeyConstraint("site", "charger_id", "connector_id", name="pk_connectors_site_id"),
    )
    op.execute("INSERT INTO connectors_v2 (site, charger_id, connector_id, status, updated_at)"
               " SELECT '', charger_id, connector_id, status, updated_at FROM connectors")
    op.drop_table("connectors")
    op.drop_table("chargers")
    op.rename_table("chargers_v2", "chargers")
    op.rename_table("connectors_v2", "connectors")
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(_site())
        batch.drop_constraint("uq_session_charger_tx", type_="unique")
        batch.create_unique_constraint("uq_session_site_charger_tx", ["site", "charger_id", "transaction_id"])
        batch.create_index("ix_sessions_site", ["site"])
    with op.batch_alter_table("meter_samples") as batch:
        batch.add_column(_site())
        batch.drop_index("ix_samples_connector_time")
        batch.create_index("ix_samples_site_connector_time", ["site", "charger_id", "connector_id", "measured_at"])
        batch.create_index("ix_meter_samples_site", ["site"])
    with op.batch_alter_table("plans") as batch:
        batch.add_column(_site())
        batch.create_index("ix_plans_site", ["site"])
    with op.batch_alter_table("commands") as batch:
        batch.add_column(_site())
        batch.drop_index("ix_commands_connector_time")
        batch.create_index("ix_commands_site_connector_time", ["site", "charger_id", "connector_id", "sent_at"])
        batch.create_index("ix_commands_site", ["site"])


def downgrade() -> None:
    raise NotImplementedError("depotctl does not downgrade a shared database; restore a backup instead")
