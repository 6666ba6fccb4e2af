"""session epoch on users, and the audit log (issue 8: web trust)

Revision ID: h8b_trust
Revises: 09c6928012dc

`user_account.session_epoch` is carried in every session cookie; sign-out bumps it, which revokes every
cookie issued before. `audit_entry` is append-only: the app inserts rows and never edits them.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "h8b_trust"
down_revision = "09c6928012dc"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "audit_entry",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("business_id", GUID(length=16), nullable=True),
        sa.Column("actor_user_id", GUID(length=16), nullable=True),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_label", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"], name=op.f("fk_audit_entry_business_id_business"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_user_id"], ["user_account.id"],
                                name=op.f("fk_audit_entry_actor_user_id_user_account"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entry_business_created", ["business_id", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_entry_actor_user_id"), ["actor_user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entry_actor_user_id"))
        batch_op.drop_index("ix_audit_entry_business_created")
    op.drop_table("audit_entry")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
