"""languages: the business's offered languages, the call's language, the customer's last language

Revision ID: lang_languages
Revises: h13_billing
Create Date: 2026-12-01 15:10:00

Issue 16. `business.languages` lists BCP-47 codes, primary first (existing businesses: English, US);
`call.language` is the language a call was held in; `customer.language` the one a customer last spoke.
"""

import sqlalchemy as sa
from alembic import op

revision = "lang_languages"
down_revision = "move_handoff"  # re-chained at merge (was h13_billing)
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(sa.Column("languages", sa.JSON(), server_default='["en-US"]', nullable=False))
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("languages")
