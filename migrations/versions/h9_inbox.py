# ruff: noqa: E501
"""owner inbox: message states and links, call outcomes, notification settings and the notification outbox

Revision ID: h9_inbox
Revises: 09c6928012dc
Create Date: 2026-12-01 11:38:30

Columns added to tables that already hold rows get server defaults, so the upgrade works on a live database:
old messages are unread and of normal urgency, old calls have no outcomes until they are looked at again.
"""

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "h9_inbox"
down_revision = "h8a_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notification_settings',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('email_enabled', sa.Boolean(), nullable=False),
    sa.Column('email_to', sa.String(length=320), nullable=False),
    sa.Column('sms_enabled', sa.Boolean(), nullable=False),
    sa.Column('sms_to', sa.String(length=20), nullable=False),
    sa.Column('on_follow_up', sa.Boolean(), nullable=False),
    sa.Column('on_bookings', sa.Boolean(), nullable=False),
    sa.Column('on_failures', sa.Boolean(), nullable=False),
    sa.Column('digest_enabled', sa.Boolean(), nullable=False),
    sa.Column('digest_time', sa.String(length=5), nullable=False),
    sa.Column('confirmations_enabled', sa.Boolean(), nullable=False),
    sa.Column('reminders_enabled', sa.Boolean(), nullable=False),
    sa.Column('reminder_time', sa.String(length=5), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_notification_settings_business_id_business'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_settings')),
    sa.UniqueConstraint('business_id', name=op.f('uq_notification_settings_business_id'))
    )
    op.create_table('notification',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('call_id', GUID(length=16), nullable=True),
    sa.Column('appointment_id', GUID(length=16), nullable=True),
    sa.Column('customer_id', GUID(length=16), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sent_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('provider_id', sa.String(length=200), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_notification_channel')),
    sa.CheckConstraint("status IN ('pending', 'sent', 'delivered', 'failed', 'skipped')", name=op.f('ck_notification_status')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], name=op.f('fk_notification_appointment_id_appointment'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_notification_business_id_business'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['call_id'], ['call.id'], name=op.f('fk_notification_call_id_call'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_notification_customer_id_customer'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('key', name=op.f('uq_notification_key'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_business_created', ['business_id', 'created_at'], unique=False)
        batch_op.create_index('ix_notification_call', ['call_id'], unique=False)
        batch_op.create_index('ix_notification_provider_id', ['provider_id'], unique=False)

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcomes', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('needs_follow_up', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sms_opted_out_at', DateTimeUTC(timezone=True), nullable=True))

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('urgency', sa.String(length=16), nullable=False, server_default='normal'))
        batch_op.add_column(sa.Column('callback_requested', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('handled_at', DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('handled_by_id', GUID(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_message_customer_id'), ['customer_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_message_handled_by_id_user_account'), 'user_account', ['handled_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_message_customer_id_customer'), 'customer', ['customer_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_message_customer_id_customer'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_message_handled_by_id_user_account'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_message_customer_id'))
        batch_op.drop_column('handled_by_id')
        batch_op.drop_column('handled_at')
        batch_op.drop_column('callback_requested')
        batch_op.drop_column('urgency')
        batch_op.drop_column('customer_id')

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('sms_opted_out_at')

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_column('needs_follow_up')
        batch_op.drop_column('outcomes')

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_provider_id')
        batch_op.drop_index('ix_notification_call')
        batch_op.drop_index('ix_notification_business_created')

    op.drop_table('notification')
    op.drop_table('notification_settings')
