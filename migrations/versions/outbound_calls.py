"""issue 16, outbound calls: click to call, confirmation calls and callbacks, with their settings

Revision ID: outbound_calls
Revises: h13_billing
Create Date: 2026-12-01 14:48:56

`outbound_call` holds each call the service places (its schedule, attempts, the attempt on the line and what
it came to); `outbound_settings` the owner's calling hours, retry policy, concurrency cap and per-service
confirmation calls. `call` gains its direction and the placed call it was an attempt of; `appointment` its
confirmation state; `customer` an opt-out from calls.
"""
# ruff: noqa: E501  (generated table definitions, one constraint a line)

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "outbound_calls"
down_revision = "lang_languages"  # re-chained at merge (was h13_billing)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbound_call',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('to_phone', sa.String(length=20), nullable=False),
    sa.Column('customer_id', GUID(length=16), nullable=True),
    sa.Column('appointment_id', GUID(length=16), nullable=True),
    sa.Column('appointment_starts_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('message_id', GUID(length=16), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('scheduled_for', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_minutes', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=True),
    sa.Column('dialing_since', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('answered_by', sa.String(length=24), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('voicemail_text', sa.Text(), nullable=True),
    sa.Column('finished_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('click_to_call', 'confirmation', 'callback')", name=op.f('ck_outbound_call_kind')),
    sa.CheckConstraint("status IN ('scheduled', 'dialing', 'done', 'cancelled', 'failed')", name=op.f('ck_outbound_call_status')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], name=op.f('fk_outbound_call_appointment_id_appointment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_outbound_call_business_id_business'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_outbound_call_customer_id_customer'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_outbound_call_message_id_message'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_call')),
    sa.UniqueConstraint('appointment_id', 'appointment_starts_at', name='uq_outbound_call_appointment_start'),
    sa.UniqueConstraint('call_sid', name=op.f('uq_outbound_call_call_sid'))
    )
    with op.batch_alter_table('outbound_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_call_appointment_id'), ['appointment_id'], unique=False)
        batch_op.create_index('ix_outbound_call_business_status', ['business_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_call_message_id'), ['message_id'], unique=False)

    op.create_table('outbound_settings',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('owner_phone', sa.String(length=20), nullable=False),
    sa.Column('calling_start', sa.String(length=5), nullable=False),
    sa.Column('calling_end', sa.String(length=5), nullable=False),
    sa.Column('confirmation_hours', sa.JSON(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_minutes', sa.Integer(), nullable=False),
    sa.Column('max_concurrent', sa.Integer(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_outbound_settings_business_id_business'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_settings')),
    sa.UniqueConstraint('business_id', name=op.f('uq_outbound_settings_business_id'))
    )
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmation', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('confirmation_at', DateTimeUTC(timezone=True), nullable=True))

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.add_column(sa.Column('direction', sa.String(length=8), server_default='inbound', nullable=False))
        batch_op.add_column(sa.Column('outbound_call_id', GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('outbound_outcome', sa.String(length=24), nullable=True))
        batch_op.create_index(batch_op.f('ix_call_outbound_call_id'), ['outbound_call_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_call_outbound_call_id_outbound_call'), 'outbound_call', ['outbound_call_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calls_opted_out_at', DateTimeUTC(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('calls_opted_out_at')

    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_call_outbound_call_id_outbound_call'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_call_outbound_call_id'))
        batch_op.drop_column('outbound_outcome')
        batch_op.drop_column('outbound_call_id')
        batch_op.drop_column('direction')

    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_column('confirmation_at')
        batch_op.drop_column('confirmation')

    op.drop_table('outbound_settings')
    with op.batch_alter_table('outbound_call', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_call_message_id'))
        batch_op.drop_index('ix_outbound_call_business_status')
        batch_op.drop_index(batch_op.f('ix_outbound_call_appointment_id'))

    op.drop_table('outbound_call')
