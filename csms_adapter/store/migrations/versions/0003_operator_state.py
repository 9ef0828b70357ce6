"""Operator state that survives a restart: the external grid cap, session overrides, vehicle data and the
billing-period peak, each per site.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _site() -> sa.Column[str]:
    return sa.Column("site", sa.String(64), nullable=False)


def upgrade() -> None:
    op.create_table(
        "grid_cap",
        _site(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("limit_kw", sa.Float(), nullable=False),
        sa.Column("set_at", TS, nullable=False),
        sa.Column("until", TS),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("site", "id", name="pk_grid_cap"),
    )
    op.create_table(
        "session_overrides",
        _site(),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("departure", TS),
        sa.Column("target_soc", sa.Float()),
        sa.Column("priority", sa.Float()),
        sa.Column("set_at", TS),
        sa.PrimaryKeyConstraint("site", "charger_id", "connector_id", name="pk_session_overrides"),
    )
    op.create_table(
        "vehicle_data",
        _site(),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("measured_at", TS, nullable=False),
        sa.Column("delivered_kwh", sa.Float(), nullable=False),
        sa.Column("soc", sa.Float()),
        sa.Column("battery_temp_c", sa.Float()),
        sa.Column("battery_kwh", sa.Float()),
        sa.Column("vehicle_id", sa.String()),
        sa.PrimaryKeyConstraint("site", "charger_id", "connector_id", name="pk_vehicle_data"),
    )
    op.create_table(
        "billing_peaks",
        _site(),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("peak_kw", sa.Float(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("site", "period", name="pk_billing_peaks"),
    )


def downgrade() -> None:
    for table in ("billing_peaks", "vehicle_data", "session_overrides", "grid_cap"):
        op.drop_table(table)
