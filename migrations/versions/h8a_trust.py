"""phone-line trust: the business's Twilio number sid, unverified customers and bookings

Revision ID: h8a_trust
Revises: h11_faults

A business's number is one of the service account's incoming numbers, kept by its sid; numbers a caller only
said (no caller-ID on the line) are marked unverified on the customer and the booking they created.
"""

import sqlalchemy as sa
from alembic import op

revision = "h8a_trust"
down_revision = "h14_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_number_sid", sa.String(length=34), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_business_phone_number_sid"), ["phone_number_sid"])
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_verified", sa.Boolean(), server_default=sa.text("1"), nullable=False))
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_verified", sa.Boolean(), server_default=sa.text("1"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_column("caller_verified")
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("phone_verified")
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_business_phone_number_sid"), type_="unique")
        batch_op.drop_column("phone_number_sid")
