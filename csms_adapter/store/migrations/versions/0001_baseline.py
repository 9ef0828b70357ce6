"""The schema as depotctl 0.1 created it (before Alembic): one site per database.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chargers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("ocpp_version", sa.String()),
        sa.Column("vendor", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("firmware", sa.String()),
        sa.Column("last_boot_at", TS),
        sa.Column("last_seen_at", TS),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("id_tag", sa.String()),
        sa.Column("started_at", TS),
        sa.Column("stopped_at", TS),
        sa.Column("meter_start_wh", sa.Float()),
        sa.Column("meter_stop_wh", sa.Float()),
        sa.Column("energy_wh", sa.Float()),
        sa.Column("stop_reason", sa.String()),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("charger_id", "transaction_id", name="uq_session_charger_tx"),
    )
    op.create_index("ix_sessions_charger_id", "sessions", ["charger_id"])
    op.create_index("ix_sessions_is_open", "sessions", ["is_open"])
    op.create_table(
        "meter_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String()),
        sa.Column("measurand", sa.String(64), nullable=False),
        sa.Column("phase", sa.String()),
        sa.Column("location", sa.String()),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String()),
        sa.Column("measured_at", TS, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_samples_connector_time", "meter_samples", ["charger_id", "connector_id", "measured_at"])
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("objective", sa.Float()),
        sa.Column("solve_ms", sa.Float(), nullable=False),
        sa.Column("build_ms", sa.Float(), nullable=False),
        sa.Column("connectors", sa.Integer(), nullable=False),
        sa.Column("total_limit_kw", sa.Float(), nullable=False),
        sa.Column("energy_needed_kwh", sa.Float(), nullable=False),
        sa.Column("energy_planned_kwh", sa.Float(), nullable=False),
        sa.Column("reason", sa.String()),
        sa.Column("binding", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_plans_time", "plans", ["time"])
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer()),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("answer", sa.String()),
        sa.Column("error", sa.String()),
        sa.Column("sent_at", TS, nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_commands_connector_time", "commands", ["charger_id", "connector_id", "sent_at"])
    op.create_table(
        "connectors",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String()),
        sa.Column("updated_at", TS),
        sa.PrimaryKeyConstraint("charger_id", "connector_id"),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"]),
    )


def downgrade() -> None:
    for table in ("connectors", "commands", "plans", "meter_samples", "sessions", "chargers"):
        op.drop_table(table)
