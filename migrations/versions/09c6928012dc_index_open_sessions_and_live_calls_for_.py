"""index open sessions and live calls for housekeeping

Revision ID: 09c6928012dc
Revises: e1db68b7051a
Create Date: 2026-11-25 06:52:30.602000

Housekeeping looks every minute for live calls that stopped writing and for sessions nobody connected to;
both indexes are partial (`ended_at IS NULL`), so they hold only the few open rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "09c6928012dc"
down_revision = "e1db68b7051a"
branch_labels = None
depends_on = None

_OPEN = "ended_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.create_index("ix_call_live_updated", ["updated_at"], unique=False, sqlite_where=sa.text(_OPEN))
    with op.batch_alter_table("call_session", schema=None) as batch_op:
        batch_op.create_index("ix_call_session_open_created", ["created_at"], unique=False,
                              sqlite_where=sa.text(_OPEN))


def downgrade() -> None:
    with op.batch_alter_table("call_session", schema=None) as batch_op:
        batch_op.drop_index("ix_call_session_open_created", sqlite_where=sa.text(_OPEN))
    with op.batch_alter_table("call", schema=None) as batch_op:
        batch_op.drop_index("ix_call_live_updated", sqlite_where=sa.text(_OPEN))
