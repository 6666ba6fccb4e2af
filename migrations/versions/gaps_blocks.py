"""owner-blocked time written to Google Calendar: the block's event and calendar

Revision ID: gaps_blocks
Revises: h13_billing
Create Date: 2026-12-01 15:10:00

Issue 15 (the gap): time the owner blocks in the dashboard is pushed to the connected Google calendar like a
booking; `busy_block` keeps the event it became and the calendar it is in (SET NULL when that calendar is
disconnected, so the block itself stays).
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID
from alembic import op

revision = "gaps_blocks"
down_revision = "h13_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("busy_block", schema=None) as batch_op:
        batch_op.add_column(sa.Column("google_link_id", GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column("google_event_id", sa.String(length=1024), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_busy_block_google_link_id_calendar_link"), "calendar_link",
                                    ["google_link_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("busy_block", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_busy_block_google_link_id_calendar_link"), type_="foreignkey")
        batch_op.drop_column("google_event_id")
        batch_op.drop_column("google_link_id")
