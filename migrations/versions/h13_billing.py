"""billing with Polar: subscriptions, webhook deliveries, usage warnings, billable minutes per call

Revision ID: h13_billing
Revises: 09c6928012dc
Create Date: 2026-12-01 11:40:00

Issue 13. `billing_subscription` keeps each business's Polar subscription as the webhooks last described it,
`polar_webhook_delivery` makes a redelivered webhook a no-op, `usage_warning` records the 80 %/100 % warnings
once per period. On `call`: the seconds it bills, the owner's spam mark, whether some of its usage had no known
price, and whether its usage reached Polar.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "h13_billing"
down_revision = "h9_inbox"
branch_labels = None
depends_on = None


def _audit() -> list[sa.Column]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "polar_webhook_delivery",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("webhook_id", sa.String(length=120), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        *_audit(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_polar_webhook_delivery")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_polar_webhook_delivery_webhook_id")),
    )
    op.create_table(
        "billing_subscription",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("business_id", GUID(length=16), nullable=False),
        sa.Column("polar_subscription_id", sa.String(length=64), nullable=False),
        sa.Column("polar_customer_id", sa.String(length=64), nullable=True),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("current_period_start", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("current_period_end", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("ends_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("polar_modified_at", DateTimeUTC(timezone=True), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"],
                                name=op.f("fk_billing_subscription_business_id_business"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_subscription")),
        sa.UniqueConstraint("business_id", name=op.f("uq_billing_subscription_business_id")),
        sa.UniqueConstraint("polar_subscription_id", name=op.f("uq_billing_subscription_polar_subscription_id")),
    )
    op.create_table(
        "usage_warning",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("business_id", GUID(length=16), nullable=False),
        sa.Column("period_start", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("used_minutes", sa.Integer(), nullable=False),
        sa.Column("included_minutes", sa.Integer(), nullable=False),
        sa.Column("delivered_by", sa.String(length=80), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"], name=op.f("fk_usage_warning_business_id_business"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_warning")),
        sa.UniqueConstraint("business_id", "period_start", "threshold", name="uq_usage_warning"),
    )
    with op.batch_alter_table("usage_warning", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_warning_business_id"), ["business_id"], unique=False)
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("billable_seconds", sa.Float(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("is_spam", sa.Boolean(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("price_unknown", sa.Boolean(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("usage_reported", sa.Boolean(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_column("usage_reported")
        batch_op.drop_column("price_unknown")
        batch_op.drop_column("is_spam")
        batch_op.drop_column("billable_seconds")
    with op.batch_alter_table("usage_warning", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_warning_business_id"))
    op.drop_table("usage_warning")
    op.drop_table("billing_subscription")
    op.drop_table("polar_webhook_delivery")
