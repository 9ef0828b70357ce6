"""Learnt battery thermal models (one per vehicle, one pooled per configured model), per site.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "thermal_fits",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("configured_max_temp_c", sa.Float(), nullable=False),
        sa.Column("configured_heating_c_per_kwh", sa.Float(), nullable=False),
        sa.Column("configured_cooling_per_h", sa.Float(), nullable=False),
        sa.Column("heating_c_per_kwh", sa.Float(), nullable=False),
        sa.Column("cooling_per_h", sa.Float(), nullable=False),
        sa.Column("cov_aa", sa.Float(), nullable=False),
        sa.Column("cov_ab", sa.Float(), nullable=False),
        sa.Column("cov_bb", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("heated_kwh", sa.Float(), nullable=False),
        sa.Column("residual_var", sa.Float(), nullable=False),
        sa.Column("score_fit", sa.Float(), nullable=False),
        sa.Column("score_configured", sa.Float(), nullable=False),
        sa.Column("score_weight", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("in_use", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("site", "key"),
    )


def downgrade() -> None:
    op.drop_table("thermal_fits")
