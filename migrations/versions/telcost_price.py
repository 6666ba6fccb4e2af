"""telephony cost: what Twilio charged for a call's phone legs (issue 16 item 6)

Revision ID: telcost_price
Revises: pages_indexes

`call` gains Twilio's price of the call and its child legs (state, amount, unit, and the USD amount a call's
total cost adds); the figures' covering index `ix_call_business_figures` gains `telephony_cost_usd` and the state, so the
overview's and the billing page's cost sums (OpenAI + phone) still read the index alone (issue 14).
"""

import sqlalchemy as sa
from alembic import op

revision = "telcost_price"
down_revision = "pages_indexes"  # re-chained at merge
branch_labels = None
depends_on = None

FIGURES = ["business_id", "started_at", "channel", "billable_seconds", "is_spam", "duration_seconds", "cost_usd"]


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telephony_cost_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("telephony_cost", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("telephony_cost_unit", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("telephony_cost_usd", sa.Float(), nullable=True))
        batch_op.drop_index("ix_call_business_figures")
        batch_op.create_index("ix_call_business_figures", [*FIGURES, "telephony_cost_usd", "telephony_cost_state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_business_figures")
        batch_op.create_index("ix_call_business_figures", FIGURES, unique=False)
        batch_op.drop_column("telephony_cost_usd")
        batch_op.drop_column("telephony_cost_unit")
        batch_op.drop_column("telephony_cost")
        batch_op.drop_column("telephony_cost_state")
