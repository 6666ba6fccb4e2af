"""recording retention per business (issue 14)

Revision ID: h14_pages
Revises: h8b_trust

Owners choose how many days call recordings are kept; NULL keeps them until deleted by hand.
"""

import sqlalchemy as sa
from alembic import op

revision = "h14_pages"
down_revision = "h11_faults"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("recording_retention_days")
