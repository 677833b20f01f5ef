"""MUSHRA screens and CCR pairs: trial items, their ratings, the CCR presentation order.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``trial_items``: the rated stimuli of a MUSHRA screen (one per condition, in the screen's
order ``slot``) or of a CCR pair (the processed sample). ``item_ratings``: one score per item
(MUSHRA 0..100, CCR -3..+3), a screen's items written in one transaction.
``trials.processed_first``: CCR only, whether the processed sample is played first (NULL for
the other test types). DCR/ACR studies keep using ``ratings``; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("processed_first", sa.Boolean(), nullable=True))
    op.create_table(
        "trial_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("stimulus_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_trial_items_trial_id_trials"),
        sa.ForeignKeyConstraint(["stimulus_id"], ["stimuli.id"], name="fk_trial_items_stimulus_id_stimuli"),
        sa.PrimaryKeyConstraint("id", name="pk_trial_items"),
        sa.UniqueConstraint("trial_id", "slot", name="uq_trial_items_trial_id_slot"),
        sa.UniqueConstraint("token", name="uq_trial_items_token"),
    )
    op.create_index("ix_trial_items_trial_id", "trial_items", ["trial_id"])
    op.create_table(
        "item_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("given_at", sa.DateTime(), nullable=False),
        sa.Column("plays_sample", sa.Integer(), nullable=False),
        sa.Column("plays_reference", sa.Integer(), nullable=False),
        sa.Column("listening_time_s", sa.Float(), nullable=False),
        sa.Column("response_time_s", sa.Float(), nullable=False),
        sa.CheckConstraint("value >= -3 AND value <= 100", name="ck_item_ratings_value_range"),
        sa.ForeignKeyConstraint(["item_id"], ["trial_items.id"], name="fk_item_ratings_item_id_trial_items"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name="fk_item_ratings_session_id_sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_item_ratings"),
        sa.UniqueConstraint("item_id", name="uq_item_ratings_item_id"),
    )
    op.create_index("ix_item_ratings_session_id", "item_ratings", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_item_ratings_session_id", table_name="item_ratings")
    op.drop_table("item_ratings")
    op.drop_index("ix_trial_items_trial_id", table_name="trial_items")
    op.drop_table("trial_items")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("processed_first")
