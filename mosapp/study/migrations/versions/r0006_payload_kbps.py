"""One name per bitrate: ``stimuli.bitrate_kbps`` becomes ``stimuli.payload_kbps``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The column always held the codec's payload bitrate (8 × payload bytes / seconds / 1000, no
container), while "kbps" elsewhere counted the whole ``.sgc`` file; the registry
(:data:`mosapp.core.metrics.METRICS`) now calls the two ``payload_kbps`` and ``file_kbps``. Only
the name changes: every value stays as it is (a plain column rename, no table rebuild).
Exports keep their CSV column ``bitrate_kbps``.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("stimuli", "bitrate_kbps", new_column_name="payload_kbps")


def downgrade() -> None:
    op.alter_column("stimuli", "payload_kbps", new_column_name="bitrate_kbps")
