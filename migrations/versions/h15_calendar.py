"""issue 15, the real calendar: resources, closures, booking rules, Google Calendar links and busy blocks

Revision ID: h15_calendar
Revises: h8b_trust
Create Date: 2026-12-01 11:34:58

Appointments gain a lane (the resource's id as text, "" without resources), and the unique guard on live
bookings moves from (business, start) to (business, lane, start): two resources may start at one moment.
"""
# ruff: noqa: E501  (generated table definitions, one constraint a line)

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "h15_calendar"
down_revision = "h8b_trust"  # re-chained after merging main (was 09c6928012dc)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('booking_rules',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('buffer_before_minutes', sa.Integer(), nullable=False),
    sa.Column('buffer_after_minutes', sa.Integer(), nullable=False),
    sa.Column('min_notice_minutes', sa.Integer(), nullable=False),
    sa.Column('max_days_ahead', sa.Integer(), nullable=False),
    sa.Column('service_buffers', sa.JSON(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_booking_rules_business_id_business'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_rules')),
    sa.UniqueConstraint('business_id', name=op.f('uq_booking_rules_business_id'))
    )
    op.create_table('calendar_account',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('refresh_token_encrypted', sa.Text(), nullable=False),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_calendar_account_business_id_business'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_account')),
    sa.UniqueConstraint('business_id', 'email', name='uq_calendar_account_business_email')
    )
    with op.batch_alter_table('calendar_account', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_account_business_id'), ['business_id'], unique=False)

    op.create_table('resource',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('weekly_hours', sa.JSON(), nullable=True),
    sa.Column('services', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('person', 'room')", name=op.f('ck_resource_kind')),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_resource_business_id_business'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource')),
    sa.UniqueConstraint('business_id', 'name', name='uq_resource_business_name')
    )
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_business_id'), ['business_id'], unique=False)

    op.create_table('calendar_link',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('account_id', GUID(length=16), nullable=False),
    sa.Column('google_id', sa.String(length=1024), nullable=False),
    sa.Column('summary', sa.String(length=300), nullable=False),
    sa.Column('access_role', sa.String(length=32), nullable=False),
    sa.Column('resource_id', GUID(length=16), nullable=True),
    sa.Column('write_bookings', sa.Boolean(), nullable=False),
    sa.Column('sync_token', sa.Text(), nullable=True),
    sa.Column('channel_id', sa.String(length=64), nullable=True),
    sa.Column('channel_token', sa.String(length=128), nullable=True),
    sa.Column('channel_resource_id', sa.String(length=255), nullable=True),
    sa.Column('channel_expires_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('last_synced_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['calendar_account.id'], name=op.f('fk_calendar_link_account_id_calendar_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_calendar_link_business_id_business'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_calendar_link_resource_id_resource'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_link')),
    sa.UniqueConstraint('business_id', 'google_id', name='uq_calendar_link_business_google'),
    sa.UniqueConstraint('channel_id', name=op.f('uq_calendar_link_channel_id'))
    )
    with op.batch_alter_table('calendar_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_link_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calendar_link_business_id'), ['business_id'], unique=False)

    op.create_table('closure',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('resource_id', GUID(length=16), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hours', sa.JSON(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_closure_business_id_business'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_closure_resource_id_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_closure'))
    )
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.create_index('ix_closure_business_day', ['business_id', 'day'], unique=False)

    op.create_table('busy_block',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('link_id', GUID(length=16), nullable=True),
    sa.Column('resource_id', GUID(length=16), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=1024), nullable=True),
    sa.Column('starts_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('ends_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('event', 'freebusy', 'owner')", name=op.f('ck_busy_block_source')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_busy_block_positive_length')),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_busy_block_business_id_business'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['calendar_link.id'], name=op.f('fk_busy_block_link_id_calendar_link'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_busy_block_resource_id_resource'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_busy_block')),
    sa.UniqueConstraint('link_id', 'external_id', name='uq_busy_block_link_external')
    )
    with op.batch_alter_table('busy_block', schema=None) as batch_op:
        batch_op.create_index('ix_busy_block_business_starts', ['business_id', 'starts_at'], unique=False)

    op.create_table('calendar_conflict',
    sa.Column('id', GUID(length=16), nullable=False),
    sa.Column('business_id', GUID(length=16), nullable=False),
    sa.Column('appointment_id', GUID(length=16), nullable=False),
    sa.Column('block_id', GUID(length=16), nullable=True),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('resolved_at', DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], name=op.f('fk_calendar_conflict_appointment_id_appointment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['block_id'], ['busy_block.id'], name=op.f('fk_calendar_conflict_block_id_busy_block'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], name=op.f('fk_calendar_conflict_business_id_business'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_conflict'))
    )
    with op.batch_alter_table('calendar_conflict', schema=None) as batch_op:
        batch_op.create_index('ix_calendar_conflict_business_open', ['business_id', 'resolved_at'], unique=False)

    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resource_id', GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('lane', sa.String(length=36), server_default='', nullable=False))
        batch_op.add_column(sa.Column('busy_from', DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('busy_until', DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('google_link_id', GUID(length=16), nullable=True))
        batch_op.add_column(sa.Column('google_event_id', sa.String(length=1024), nullable=True))
        batch_op.drop_index(batch_op.f('uq_appointment_business_start_live'), sqlite_where=sa.text("status = 'booked'"))
        batch_op.create_index(batch_op.f('ix_appointment_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index('uq_appointment_business_lane_start_live', ['business_id', 'lane', 'starts_at'], unique=True, sqlite_where=sa.text("status = 'booked'"))
        batch_op.create_foreign_key(batch_op.f('fk_appointment_google_link_id_calendar_link'), 'calendar_link', ['google_link_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_appointment_resource_id_resource'), 'resource', ['resource_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_appointment_resource_id_resource'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_appointment_google_link_id_calendar_link'), type_='foreignkey')
        batch_op.drop_index('uq_appointment_business_lane_start_live', sqlite_where=sa.text("status = 'booked'"))
        batch_op.drop_index(batch_op.f('ix_appointment_resource_id'))
        batch_op.create_index(batch_op.f('uq_appointment_business_start_live'), ['business_id', 'starts_at'], unique=1, sqlite_where=sa.text("status = 'booked'"))
        batch_op.drop_column('google_event_id')
        batch_op.drop_column('google_link_id')
        batch_op.drop_column('busy_until')
        batch_op.drop_column('busy_from')
        batch_op.drop_column('lane')
        batch_op.drop_column('resource_id')

    with op.batch_alter_table('calendar_conflict', schema=None) as batch_op:
        batch_op.drop_index('ix_calendar_conflict_business_open')

    op.drop_table('calendar_conflict')
    with op.batch_alter_table('busy_block', schema=None) as batch_op:
        batch_op.drop_index('ix_busy_block_business_starts')

    op.drop_table('busy_block')
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.drop_index('ix_closure_business_day')

    op.drop_table('closure')
    with op.batch_alter_table('calendar_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_link_business_id'))
        batch_op.drop_index(batch_op.f('ix_calendar_link_account_id'))

    op.drop_table('calendar_link')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_business_id'))

    op.drop_table('resource')
    with op.batch_alter_table('calendar_account', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_account_business_id'))

    op.drop_table('calendar_account')
    op.drop_table('booking_rules')
