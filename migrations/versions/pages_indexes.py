"""indexes for the owner pages at 100,000 calls (issue 14)

Revision ID: pages_indexes
Revises: h13_billing

Measured with bench/bench_pages_under_load.py at 100,000 calls: the live list and the live-call count walked
every session of the business (270 ms and 120 ms per poll when no call is live, the idle case), and the
overview's day buckets, its month totals and the plan's usage read every call row of their window from the
table (the usage over a trial's whole history: 450 ms). A partial index holds only the open sessions per
business; a covering index holds the columns the figures sum, so they never touch the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "pages_indexes"
down_revision = "workers_ratelimit"  # re-chained at merge (was h13_billing)
branch_labels = None
depends_on = None

_OPEN = "ended_at IS NULL"
FIGURES = ["business_id", "started_at", "channel", "billable_seconds", "is_spam", "duration_seconds", "cost_usd"]


def upgrade() -> None:
    with op.batch_alter_table("call_session", schema=None) as batch_op:
        batch_op.create_index("ix_call_session_open_business", ["business_id", "created_at"], unique=False,
                              sqlite_where=sa.text(_OPEN))
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_business_figures", FIGURES, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_business_figures")
    with op.batch_alter_table("call_session", schema=None) as batch_op:
        batch_op.drop_index("ix_call_session_open_business", sqlite_where=sa.text(_OPEN))
