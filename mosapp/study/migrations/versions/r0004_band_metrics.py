"""Low- and high-band spectral distance and correlation per stimulus (mosapp.core.metrics.band_metrics).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ("low_band_distance_db", "low_band_correlation", "high_band_distance_db", "high_band_correlation")


def upgrade() -> None:
    with op.batch_alter_table("stimuli") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stimuli") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
