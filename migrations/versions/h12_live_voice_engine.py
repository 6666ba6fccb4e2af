"""voice engine per business and per call (issue 12: GPT-Live)

Revision ID: h12_live
Revises: 09c6928012dc
Create Date: 2026-12-01 11:40:00

`business.voice_engine` is the owner's choice (NULL follows the operator default); `call.engine` records
which engine answered each call, so a Live call that fell back to Realtime says so.
"""

import sqlalchemy as sa
from alembic import op

revision = "h12_live"
down_revision = "h15_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voice_engine", sa.String(length=16), nullable=True))
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engine", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("engine")
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("voice_engine")
