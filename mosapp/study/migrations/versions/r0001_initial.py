"""The study store: studies, clips, conditions, stimuli, listeners, sessions, trials and ratings.

Revision ID: 0001
Revises:
Create Date: 2026-05-10

(Split into one helper per group of tables; the statements, and so the schema, are those it always made.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _studies_clips_conditions()
    _stimuli()
    _listeners_sessions()
    _trials_ratings()


def _studies_clips_conditions() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("test_type", sa.String(length=8), nullable=False),
        sa.Column("definition_toml", sa.Text(), nullable=False),
        sa.Column("design_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("prepared_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_studies"),
        sa.UniqueConstraint("name", name="uq_studies_name"),
    )
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("length_s", sa.Float(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_clips_study_id_studies"),
        sa.PrimaryKeyConstraint("id", name="pk_clips"),
        sa.UniqueConstraint("study_id", "name", name="uq_clips_study_id_name"),
    )
    op.create_index("ix_clips_study_id", "clips", ["study_id"])
    op.create_table(
        "conditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("is_reference", sa.Boolean(), nullable=False),
        sa.Column("in_plan", sa.Boolean(), nullable=False),
        sa.Column("nominal_kbps", sa.Float(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_conditions_study_id_studies"),
        sa.PrimaryKeyConstraint("id", name="pk_conditions"),
        sa.UniqueConstraint("study_id", "name", name="uq_conditions_study_id_name"),
    )
    op.create_index("ix_conditions_study_id", "conditions", ["study_id"])


def _stimuli() -> None:
    op.create_table(
        "stimuli",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("condition_id", sa.Integer(), nullable=False),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("audio_file", sa.String(length=255), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("bitrate_kbps", sa.Float(), nullable=True),
        sa.Column("loudness_lufs", sa.Float(), nullable=False),
        sa.Column("gain_db", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["clips.id"], name="fk_stimuli_clip_id_clips"),
        sa.ForeignKeyConstraint(["condition_id"], ["conditions.id"], name="fk_stimuli_condition_id_conditions"),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_stimuli_study_id_studies"),
        sa.PrimaryKeyConstraint("id", name="pk_stimuli"),
        sa.UniqueConstraint("clip_id", "condition_id", name="uq_stimuli_clip_id_condition_id"),
    )
    op.create_index("ix_stimuli_study_id", "stimuli", ["study_id"])
    op.create_index("ix_stimuli_clip_id", "stimuli", ["clip_id"])
    op.create_index("ix_stimuli_condition_id", "stimuli", ["condition_id"])


def _listeners_sessions() -> None:
    op.create_table(
        "listeners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"], name="fk_listeners_study_id_studies"),
        sa.PrimaryKeyConstraint("id", name="pk_listeners"),
        sa.UniqueConstraint("study_id", "code", name="uq_listeners_study_id_code"),
        sa.UniqueConstraint("study_id", "position", name="uq_listeners_study_id_position"),
    )
    op.create_index("ix_listeners_study_id", "listeners", ["study_id"])
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listener_id", sa.Integer(), nullable=False),
        sa.Column("app_version", sa.String(length=64), nullable=False),
        sa.Column("audio_device", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["listener_id"], ["listeners.id"], name="fk_sessions_listener_id_listeners"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_listener_id", "sessions", ["listener_id"])


def _trials_ratings() -> None:
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("listener_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_training", sa.Boolean(), nullable=False),
        sa.Column("stimulus_id", sa.Integer(), nullable=False),
        sa.Column("reference_stimulus_id", sa.Integer(), nullable=True),
        sa.Column("trial_token", sa.String(length=32), nullable=False),
        sa.Column("sample_token", sa.String(length=32), nullable=False),
        sa.Column("reference_token", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["listener_id"], ["listeners.id"], name="fk_trials_listener_id_listeners"),
        sa.ForeignKeyConstraint(["stimulus_id"], ["stimuli.id"], name="fk_trials_stimulus_id_stimuli"),
        sa.ForeignKeyConstraint(["reference_stimulus_id"], ["stimuli.id"],
                                name="fk_trials_reference_stimulus_id_stimuli"),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.UniqueConstraint("listener_id", "position", name="uq_trials_listener_id_position"),
        sa.UniqueConstraint("trial_token", name="uq_trials_trial_token"),
        sa.UniqueConstraint("sample_token", name="uq_trials_sample_token"),
        sa.UniqueConstraint("reference_token", name="uq_trials_reference_token"),
    )
    op.create_index("ix_trials_listener_id", "trials", ["listener_id"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("given_at", sa.DateTime(), nullable=False),
        sa.Column("plays_sample", sa.Integer(), nullable=False),
        sa.Column("plays_reference", sa.Integer(), nullable=False),
        sa.Column("listening_time_s", sa.Float(), nullable=False),
        sa.Column("response_time_s", sa.Float(), nullable=False),
        sa.CheckConstraint("value >= 1 AND value <= 5", name="ck_ratings_value_1_to_5"),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name="fk_ratings_session_id_sessions"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_ratings_trial_id_trials"),
        sa.PrimaryKeyConstraint("id", name="pk_ratings"),
        sa.UniqueConstraint("trial_id", name="uq_ratings_trial_id"),
    )
    op.create_index("ix_ratings_session_id", "ratings", ["session_id"])


def downgrade() -> None:
    for table in ("ratings", "trials", "sessions", "listeners", "stimuli", "conditions", "clips", "studies"):
        op.drop_table(table)
