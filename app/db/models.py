"""The data model. Every owner-visible row carries `business_id` so queries can be scoped to one business."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship


class Channel(StrEnum):
    BROWSER = "browser"
    TWILIO = "twilio"


class SessionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"


class CallStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    TRANSFERRED = "transferred"
    ABANDONED = "abandoned"


class EventKind(StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    SYSTEM = "system"
    ERROR = "error"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class BillingStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _enum_check(column: str, enum_cls: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{m.value}'" for m in enum_cls)
    return CheckConstraint(f"{column} IN ({values})", name=column)


class User(UUIDv7AuditBase):
    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    google_sub: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)

    business: Mapped[Business | None] = relationship(back_populates="owner", lazy="noload", uselist=False)


class Business(UUIDv7AuditBase):
    __tablename__ = "business"

    # One business per owner keeps every owner route trivially scoped.
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    phone_number: Mapped[str | None] = mapped_column(String(20), unique=True, default=None)
    transfer_number: Mapped[str | None] = mapped_column(String(20), default=None)
    address: Mapped[str] = mapped_column(String(500), default="")
    greeting: Mapped[str] = mapped_column(Text, default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    voice: Mapped[str] = mapped_column(String(40), default="marin")
    # {"mon": [["09:00", "17:00"]], "tue": [...], ...}; local wall-clock times in `timezone`.
    weekly_hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)
    # [{"name": "Haircut", "minutes": 30, "price": 25.0}, ...]
    services: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recording_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    max_call_seconds: Mapped[int] = mapped_column(Integer, default=600)
    # Bumped by every booking write: the first write of a booking transaction, so SQLite/libSQL
    # serialise concurrent bookings of one business before the overlap check reads anything.
    booking_version: Mapped[int] = mapped_column(Integer, default=0)
    plan: Mapped[str] = mapped_column(String(40), default="free")

    owner: Mapped[User] = relationship(back_populates="business", lazy="noload")


class Session(UUIDv7AuditBase):
    __tablename__ = "call_session"
    __table_args__ = (
        _enum_check("channel", Channel),
        _enum_check("status", SessionStatus),
        Index("ix_call_session_business_created", "business_id", "created_at"),
        # Housekeeping closes sessions nobody connected to; open sessions are few, so the index stays small.
        Index("ix_call_session_open_created", "created_at", sqlite_where=text("ended_at IS NULL")),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.PENDING.value)
    caller_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    twilio_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    # The random part of the signed connect token; `token_used_at` makes the token single-use.
    token_nonce: Mapped[str | None] = mapped_column(String(64), default=None)
    token_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)


class Customer(UUIDv7AuditBase):
    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("business_id", "phone", name="uq_customer_business_phone"),)

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    notes: Mapped[str] = mapped_column(Text, default="")


class Call(UUIDv7AuditBase):
    __tablename__ = "call"
    __table_args__ = (
        _enum_check("status", CallStatus),
        Index("ix_call_business_started", "business_id", "started_at"),
        Index("ix_call_business_caller", "business_id", "caller_phone"),
        # Housekeeping looks for live calls whose process stopped writing; almost every call has ended, so
        # this index stays tiny however many calls there are.
        Index("ix_call_live_updated", "updated_at", sqlite_where=text("ended_at IS NULL")),
    )

    session_id: Mapped[UUID] = mapped_column(ForeignKey("call_session.id", ondelete="CASCADE"), unique=True)
    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    customer_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), default=None, index=True
    )
    channel: Mapped[str] = mapped_column(String(16), default=Channel.BROWSER.value)
    caller_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    status: Mapped[str] = mapped_column(String(16), default=CallStatus.IN_PROGRESS.value)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    end_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    # Plain-text "Caller: …\nAgent: …" kept alongside the events so search is one column scan.
    transcript: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    # {"realtime": {...}, "transcription": {...}, "supervisor": {...}} token counts per source.
    usage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    # [{"turn": 1, "response_ms": 640, "supervisor_ms": 1200}, ...]
    latencies: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recording_path: Mapped[str | None] = mapped_column(String(500), default=None)
    # Issue 13 (billing): the seconds a call counts against the plan, set when it is finalised (0 for browser
    # test calls, calls the AI never answered, and calls under 15 s that ended before the caller spoke);
    # calls the owner marks as spam stop counting. `price_unknown`: part of its usage is of a model no price
    # table knows, so `cost_usd` holds only the priced part and pages say "price unknown".
    billable_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    is_spam: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    price_unknown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    # Its usage event reached Polar (so marking it as spam later sends a credit).
    usage_reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))


class CallEvent(UUIDv7AuditBase):
    __tablename__ = "call_event"
    __table_args__ = (
        _enum_check("kind", EventKind),
        UniqueConstraint("call_id", "sequence", name="uq_call_event_sequence"),
    )

    call_id: Mapped[UUID] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    offset_ms: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Appointment(UUIDv7AuditBase):
    __tablename__ = "appointment"
    __table_args__ = (
        _enum_check("status", AppointmentStatus),
        CheckConstraint("ends_at > starts_at", name="positive_length"),
        Index("ix_appointment_business_starts", "business_id", "starts_at"),
        # A second guard under the serialised overlap check: two live bookings can never share a start.
        Index(
            "uq_appointment_business_start_live",
            "business_id",
            "starts_at",
            unique=True,
            sqlite_where=text("status = 'booked'"),
        ),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    customer_id: Mapped[UUID] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[UUID | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"), default=None)
    service: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default=AppointmentStatus.BOOKED.value)
    notes: Mapped[str] = mapped_column(Text, default="")

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)


class Message(UUIDv7AuditBase):
    """A message taken for the business when the receptionist can't help directly."""

    __tablename__ = "message"

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[UUID | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"), default=None)
    caller_name: Mapped[str] = mapped_column(String(200), default="")
    caller_phone: Mapped[str | None] = mapped_column(String(20), default=None)
    body: Mapped[str] = mapped_column(Text)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)


class Billing(UUIDv7AuditBase):
    __tablename__ = "billing"
    __table_args__ = (
        _enum_check("status", BillingStatus),
        Index("ix_billing_business_period", "business_id", "period"),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(7))  # "YYYY-MM"
    amount_cents: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    status: Mapped[str] = mapped_column(String(16), default=BillingStatus.PENDING.value)
    provider_reference: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)


class Job(UUIDv7AuditBase):
    """Durable background work (app.jobs): summaries, notifications, usage reports; claimed with a lease."""

    __tablename__ = "job"
    __table_args__ = (_enum_check("status", JobStatus), Index("ix_job_status_run_after", "status", "run_after"))

    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class SubscriptionStatus(StrEnum):
    """Polar's subscription statuses (polar.v2026_04 SubscriptionStatus)."""

    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    UNPAID = "unpaid"


class BillingSubscription(UUIDv7AuditBase):
    """Issue 13: a business's Polar subscription as the webhooks last described it (one per business).

    `polar_modified_at` is the subscription's own `modified_at` (else the event's timestamp) from the event
    that wrote this row: an older event arriving late never overwrites a newer state."""

    __tablename__ = "billing_subscription"

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), unique=True)
    polar_subscription_id: Mapped[str] = mapped_column(String(64), unique=True)
    polar_customer_id: Mapped[str | None] = mapped_column(String(64), default=None)
    product_id: Mapped[str] = mapped_column(String(64))
    plan: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(24))
    current_period_start: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    current_period_end: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    ends_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    polar_modified_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class PolarWebhookDelivery(UUIDv7AuditBase):
    """Issue 13: every Polar webhook handled, by its `webhook-id`, so a redelivery changes nothing."""

    __tablename__ = "polar_webhook_delivery"

    webhook_id: Mapped[str] = mapped_column(String(120), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    # What the delivery did ("subscription active", "older than the state kept: ignored"), for support.
    outcome: Mapped[str] = mapped_column(String(200), default="")


class UsageWarning(UUIDv7AuditBase):
    """Issue 13: the owner was warned that the period's minutes reached 80 % or 100 % of the plan (once each)."""

    __tablename__ = "usage_warning"
    __table_args__ = (UniqueConstraint("business_id", "period_start", "threshold", name="uq_usage_warning"),)

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    threshold: Mapped[int] = mapped_column(Integer)  # percent of the included minutes: 80 or 100
    plan: Mapped[str] = mapped_column(String(40))
    used_minutes: Mapped[int] = mapped_column(Integer)
    included_minutes: Mapped[int] = mapped_column(Integer)
    # How the owner was told: "billing page" always; "email" when an SMTP channel exists and it was sent.
    delivered_by: Mapped[str] = mapped_column(String(80), default="billing page")
