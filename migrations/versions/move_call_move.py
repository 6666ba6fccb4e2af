"""call moves between instances (issue 11 item 4: deploys that cut no call)

Revision ID: move_handoff
Revises: h13_billing
Create Date: 2026-12-01 15:00:00

`call_move`: a live phone call handed from a draining instance to another one over a fresh media stream.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "move_handoff"
down_revision = "gaps_blocks"  # re-chained at merge (was h13_billing)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_move",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("call_id", GUID(length=16), nullable=False),
        sa.Column("session_id", GUID(length=16), nullable=False),
        sa.Column("business_id", GUID(length=16), nullable=False),
        sa.Column("token_nonce", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("released_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("claimed_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("cancelled", sa.String(length=200), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"], name=op.f("fk_call_move_business_id_business"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"], name=op.f("fk_call_move_call_id_call"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["session_id"], ["call_session.id"],
                                name=op.f("fk_call_move_session_id_call_session"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_move")),
    )
    with op.batch_alter_table("call_move", schema=None) as batch_op:
        batch_op.create_index("ix_call_move_call", ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_move_business_id"), ["business_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call_move", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_move_business_id"))
        batch_op.drop_index("ix_call_move_call")
    op.drop_table("call_move")
