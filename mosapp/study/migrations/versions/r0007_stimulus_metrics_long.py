"""Stimulus metrics in a long table: one row per (stimulus, metric, value).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Revisions 0002 and 0004 gave ``stimuli`` a column per metric, so a new study metric needed a
column and a migration. ``stimulus_metrics`` holds them by name instead (a name of the
registry's :data:`mosapp.core.metrics.STUDY_METRIC_NAMES`): every non-NULL value of the eight
metric columns is copied into it, then the columns are dropped (a plain ``ALTER TABLE ... DROP
COLUMN``, SQLite 3.35 or later: no table rebuild, so nothing that refers to ``stimuli`` is
touched). A NULL (not asked for, or not finite) becomes no row, which reads back as NULL.

Downgrading puts the columns back and copies those eight metrics into them; a metric added
after this revision has no column to go to and is dropped with the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: The metric columns of revisions 0002 and 0004, in their order (frozen: this revision's data).
METRIC_COLUMNS = ("mel_distance", "si_sdr_db", "spectral_convergence_db", "visqol",
                  "low_band_distance_db", "low_band_correlation", "high_band_distance_db", "high_band_correlation")


def upgrade() -> None:
    op.create_table(
        "stimulus_metrics",
        sa.Column("stimulus_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["stimulus_id"], ["stimuli.id"], name="fk_stimulus_metrics_stimulus_id_stimuli",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("stimulus_id", "metric", name="pk_stimulus_metrics"),
    )
    for name in METRIC_COLUMNS:
        # The name is one of the frozen constants above, never user input.
        op.execute(f"INSERT INTO stimulus_metrics (stimulus_id, metric, value) "
                   f"SELECT id, '{name}', {name} FROM stimuli WHERE {name} IS NOT NULL")
    for name in METRIC_COLUMNS:
        op.drop_column("stimuli", name)


def downgrade() -> None:
    for name in METRIC_COLUMNS:
        op.add_column("stimuli", sa.Column(name, sa.Float(), nullable=True))
    for name in METRIC_COLUMNS:
        op.execute(f"UPDATE stimuli SET {name} = (SELECT value FROM stimulus_metrics "
                   f"WHERE stimulus_metrics.stimulus_id = stimuli.id AND stimulus_metrics.metric = '{name}')")
    op.drop_table("stimulus_metrics")
