"""Vehicle data: each value's own time (a report with only a temperature must not make an older SoC look fresh).

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("vehicle_data") as batch:
        batch.add_column(sa.Column("soc_at", TS, nullable=True))
        batch.add_column(sa.Column("temp_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vehicle_data") as batch:
        batch.drop_column("temp_at")
        batch.drop_column("soc_at")
