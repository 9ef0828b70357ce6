"""The fail-safe share each charger last accepted, per site (restored at start: docs/safety-phases.md).

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "failsafe_held",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("station_kw", sa.Float(), nullable=False),
        sa.Column("spread", sa.Integer(), nullable=False),
        sa.Column("accepted_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("site", "charger_id"),
    )


def downgrade() -> None:
    op.drop_table("failsafe_held")
