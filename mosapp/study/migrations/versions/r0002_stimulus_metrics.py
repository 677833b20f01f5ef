"""Objective metrics, peak level and alignment delay per stimulus.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("peak_dbfs", sa.Float()),
    ("delay_samples", sa.Integer()),
    ("mel_distance", sa.Float()),
    ("si_sdr_db", sa.Float()),
    ("spectral_convergence_db", sa.Float()),
    ("visqol", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("stimuli") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stimuli") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
