"""shared rate-limit windows (one row per limit and client, counted by every worker and instance)

Revision ID: workers_ratelimit
Revises: h13_billing
Create Date: 2026-12-01 15:05:00

Issue 10: the sign-in and session-creation rate limits were per-process memory (Litestar's default store), so
two workers allowed twice the limit. `rate_limit_window` holds each limit's count per client in its window.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "workers_ratelimit"
down_revision = "outbound_calls"  # re-chained at merge (was h13_billing)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_window",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("window_start", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_window")),
        sa.UniqueConstraint("key", name=op.f("uq_rate_limit_window_key")),
    )
    with op.batch_alter_table("rate_limit_window", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_window_window_start"), ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_limit_window", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_window_window_start"))
    op.drop_table("rate_limit_window")
