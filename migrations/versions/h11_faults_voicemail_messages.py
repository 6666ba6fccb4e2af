"""Issue 11: voicemail messages (recording, audio file, transcript status)

Revision ID: h11_faults
Revises: h8b_trust
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "h11_faults"
down_revision = "h12_live"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("recording_sid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("audio_path", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("audio_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("transcript_status", sa.String(length=16), nullable=True))
        batch.create_unique_constraint(batch.f("uq_message_recording_sid"), ["recording_sid"])


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_constraint(batch.f("uq_message_recording_sid"), type_="unique")
        batch.drop_column("transcript_status")
        batch.drop_column("audio_seconds")
        batch.drop_column("audio_path")
        batch.drop_column("recording_sid")
