"""A per-study salt for stimulus file names; gold (known-answer) trials.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

``studies.stimulus_salt`` is NULL for a study prepared before this revision: its stimuli keep
their old names (``<cache key>.wav`` with a ``.json`` sidecar) and still play; the next
``prepare`` draws a salt, renames the files and deletes the sidecars (nothing is rendered again).
``trials.gold_expected`` is NULL for ordinary trials.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("stimulus_salt", sa.String(length=64), nullable=True))
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("gold_expected", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("gold_expected")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("stimulus_salt")
