"""Condition monitoring: the raw charger event history, incidents and the 2.0.1 device model, each per site.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "charger_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("time", TS, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("code", sa.String(), nullable=True),
        sa.Column("vendor_code", sa.String(), nullable=True),
        sa.Column("info", sa.String(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_charger_events_site", "charger_events", ["site"], unique=False)
    op.create_index("ix_charger_events_site_charger_time", "charger_events", ["site", "charger_id", "time"], unique=False)
    op.create_index("ix_charger_events_time", "charger_events", ["time"], unique=False)
    op.create_table(
        "device_variables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("component", sa.String(length=128), nullable=False),
        sa.Column("component_instance", sa.String(length=128), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.String(length=128), nullable=False),
        sa.Column("variable_instance", sa.String(length=128), nullable=False),
        sa.Column("attribute_type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(), nullable=True),
        sa.Column("mutability", sa.String(), nullable=True),
        sa.Column("reported_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "site",
            "charger_id",
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            name="uq_device_variable",
        ),
    )
    op.create_index("ix_device_variables_charger_id", "device_variables", ["charger_id"], unique=False)
    op.create_index("ix_device_variables_site", "device_variables", ["site"], unique=False)
    op.create_table(
        "incidents",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(), nullable=True),
        sa.Column("vendor_code", sa.String(), nullable=True),
        sa.Column("info", sa.String(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("site", "id"),
    )
    op.create_index("ix_incidents_charger_id", "incidents", ["charger_id"], unique=False)
    op.create_index("ix_incidents_opened_at", "incidents", ["opened_at"], unique=False)
    op.create_index("ix_incidents_resolved_at", "incidents", ["resolved_at"], unique=False)


def downgrade() -> None:
    for table in ("incidents", "device_variables", "charger_events"):
        op.drop_table(table)
