"""The data model. Every owner-visible row carries `business_id` so queries can be scoped to one business."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
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


# The one name for "the plan's limit kept this call from the AI", as `Call.end_reason` stores it (by where the
# fallback sent the caller): the webhook records it, the billing page counts it, the calls page words it.
PLAN_LIMIT_FORWARDED = "limit_reached_forwarded"
PLAN_LIMIT_VOICEMAIL = "limit_reached_voicemail"
PLAN_LIMIT_END_REASONS = (PLAN_LIMIT_FORWARDED, PLAN_LIMIT_VOICEMAIL)


def plan_limit_end_reason(forwarded: bool) -> str:
    return PLAN_LIMIT_FORWARDED if forwarded else PLAN_LIMIT_VOICEMAIL


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
    # Issue 8 (sign-out revokes): every session cookie carries the epoch it was issued in; sign-out bumps
    # it, so every cookie issued before, in any browser, stops working at once.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

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
    # Issue 8 (numbers belong to the account): the Twilio IncomingPhoneNumber (PN…) behind `phone_number`,
    # set only by picking one of the service account's numbers (app.telephony.numbers), so it can be released.
    phone_number_sid: Mapped[str | None] = mapped_column(String(34), unique=True, default=None)
    # Issue 12: the owner's voice engine, "realtime" or "live"; None follows the operator's VOICE_ENGINE_DEFAULT.
    voice_engine: Mapped[str | None] = mapped_column(String(16), default=None)
    # Issue 14 (owner pages): recordings older than this many days are deleted by housekeeping; None keeps them.
    recording_retention_days: Mapped[int | None] = mapped_column(Integer, default=None)
    # Issue 16 (languages): BCP-47 codes from app.i18n.languages.SUPPORTED, the primary language first (greeting,
    # owner's summaries and notifications), then the others the receptionist switches to when a caller speaks one.
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["en-US"], server_default='["en-US"]')

    owner: Mapped[User] = relationship(back_populates="business", lazy="noload")


class Session(UUIDv7AuditBase):
    __tablename__ = "call_session"
    __table_args__ = (
        _enum_check("channel", Channel),
        _enum_check("status", SessionStatus),
        Index("ix_call_session_business_created", "business_id", "created_at"),
        # Housekeeping closes sessions nobody connected to; open sessions are few, so the index stays small.
        Index("ix_call_session_open_created", "created_at", sqlite_where=text("ended_at IS NULL")),
        # Issue 14: the live list and the live-call count, per business, read only the open sessions (a live
        # session is one not ended); without it every poll walked all of the business's sessions.
        Index("ix_call_session_open_business", "business_id", "created_at", sqlite_where=text("ended_at IS NULL")),
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
    # Issue 8 (caller identity): False while the number is only what a caller said on a line that showed no
    # caller-ID; a call from the number itself (or the owner) confirms it.
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("1"))
    # issue 9 (owner's inbox): the number replied STOP to the business's texts (Twilio error 21610); never text again.
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Issue 16 (languages): the offered language (BCP-47) this customer last spoke on a call, for the next call and
    # for calls and texts the business sends them; None until a call with them reached the receptionist.
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    # Issue 16 (outbound calls): the customer asked not to be called by the receptionist; never dial them.
    calls_opted_out_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class Call(UUIDv7AuditBase):
    __tablename__ = "call"
    __table_args__ = (
        _enum_check("status", CallStatus),
        Index("ix_call_business_started", "business_id", "started_at"),
        Index("ix_call_business_caller", "business_id", "caller_phone"),
        # Housekeeping looks for live calls whose process stopped writing; almost every call has ended, so
        # this index stays tiny however many calls there are.
        Index("ix_call_live_updated", "updated_at", sqlite_where=text("ended_at IS NULL")),
        # Issue 14: everything the overview's day buckets and totals and the plan's usage sum, so those
        # aggregates read the index alone (at 100,000 calls the table lookups were most of their time).
        # (+ telephony_cost_usd, issue 16 item 6: a call's total cost is OpenAI's plus Twilio's; app.billing.call_cost)
        Index("ix_call_business_figures", "business_id", "started_at", "channel", "billable_seconds", "is_spam",
              "duration_seconds", "cost_usd", "telephony_cost_usd", "telephony_cost_state"),
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
    # issue 9 (owner's inbox): what happened on the call, derived once at finalisation (app.inbox.outcomes):
    # ["booked", "message_taken", ...], and whether the owner has to act on it.
    outcomes: Mapped[list[str]] = mapped_column(JSON, default=list)
    needs_follow_up: Mapped[bool] = mapped_column(Boolean, default=False)
    # Issue 13 (billing): the seconds a call counts against the plan, set when it is finalised (0 for browser
    # test calls, calls the AI never answered, and calls under 15 s that ended before the caller spoke);
    # calls the owner marks as spam stop counting. `price_unknown`: part of its usage is of a model no price
    # table knows, so `cost_usd` holds only the priced part and pages say "price unknown".
    billable_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    is_spam: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    price_unknown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    # Its usage event reached Polar (so marking it as spam later sends a credit).
    usage_reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    # Issue 12: the engine that answered ("realtime" or "live"); a Live call that fell back says "realtime"
    # here and has a system event naming the reason. None on calls recorded before engines existed.
    engine: Mapped[str | None] = mapped_column(String(16), default=None)
    # Issue 16 (languages): the language the call was held in (BCP-47, one the business offers): the primary
    # language until the caller spoke another offered one. None on calls from before languages existed.
    language: Mapped[str | None] = mapped_column(String(16), default=None)
    # -- issue 16 (outbound calls): "inbound" or "outbound"; the placed call it was an attempt of, and what
    # that attempt came to (confirmed, rescheduled, cancelled, voicemail_left, no_answer, busy, failed, connected).
    direction: Mapped[str] = mapped_column(String(8), default="inbound", server_default="inbound")
    outbound_call_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("outbound_call.id", ondelete="SET NULL"), default=None, index=True
    )
    outbound_outcome: Mapped[str | None] = mapped_column(String(24), default=None)
    # -- issue 16 item 6 (what the phone leg cost): Twilio's own price of the call and of the legs it spawned
    # (<Dial>), fetched once Twilio has rated them (app.telephony.call_cost). State: None (no Twilio call, or
    # from before this was kept), "pending" (Twilio has not priced it yet), "rated", "unrated" (Twilio never
    # gave a price: unknown, never 0). `telephony_cost` is in `telephony_cost_unit` (Twilio's price_unit);
    # `telephony_cost_usd` is the same amount when that unit is USD, the part a call's total cost adds.
    telephony_cost_state: Mapped[str | None] = mapped_column(String(16), default=None)
    telephony_cost: Mapped[float | None] = mapped_column(Float, default=None)
    telephony_cost_unit: Mapped[str | None] = mapped_column(String(8), default=None)
    telephony_cost_usd: Mapped[float | None] = mapped_column(Float, default=None)


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
        # A second guard under the serialised overlap check: two live bookings of one resource (lane) can
        # never share a start.
        Index(
            "uq_appointment_business_lane_start_live",
            "business_id",
            "lane",
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
    # Issue 8 (caller identity): False when booked by a caller whose number the line didn't vouch for (withheld
    # caller-ID), so the owner can tell a booking made "as" a number from one made by it.
    caller_verified: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("1"))
    # -- issue 15 (the real calendar): who does it, the padded time it holds, its Google Calendar event.
    resource_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("resource.id", ondelete="SET NULL"), default=None, index=True
    )
    # The resource's id as text, or "" for a business without resources: kept even if the resource is
    # deleted so the unique index above still guards that lane's history.
    lane: Mapped[str] = mapped_column(String(36), default="", server_default="")
    # Start/end widened by the service's buffers; None for rows from before buffers existed.
    busy_from: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    busy_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    google_link_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("calendar_link.id", ondelete="SET NULL"), default=None
    )
    google_event_id: Mapped[str | None] = mapped_column(String(1024), default=None)
    # -- issue 16 (confirmation calls): what the receptionist's call about it came to (confirmed, rescheduled,
    # cancelled, voicemail_left, no_answer), and when; None while nobody has called about it.
    confirmation: Mapped[str | None] = mapped_column(String(24), default=None)
    confirmation_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

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
    # issue 9 (owner's inbox): unread until handled (`is_read` mirrors it); who handled it and when; the
    # customer the caller is (by number); how urgent; whether they asked to be called back.
    customer_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), default=None, index=True
    )
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    callback_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    handled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    handled_by_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    # Issue 11: a voicemail left when the AI could not answer: its audio (under RECORDINGS_DIR), Twilio's
    # recording, and whether its transcript (the body) is still to come (pending), done or failed.
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    audio_path: Mapped[str | None] = mapped_column(String(500), default=None)
    audio_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    transcript_status: Mapped[str | None] = mapped_column(String(16), default=None)


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


# -- issue 9: the owner's inbox (notification settings and the notification outbox) ------------------------------
class NotificationChannel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent (or retrying: see attempts and last_error)
    SENT = "sent"  # accepted by the SMTP server / Twilio
    DELIVERED = "delivered"  # Twilio's status callback says it reached the phone
    FAILED = "failed"  # given up, or refused for good; last_error says why
    SKIPPED = "skipped"  # not sent on purpose (recipient opted out, channel turned off since)


class NotificationSettings(UUIDv7AuditBase):
    """What a business wants to be told, and how; one row per business (absent: the defaults below)."""

    __tablename__ = "notification_settings"

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), unique=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: empty: the owner's sign-in address
    email_to: Mapped[str] = mapped_column(String(320), default="")
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_to: Mapped[str] = mapped_column(String(20), default="")
    on_follow_up: Mapped[bool] = mapped_column(Boolean, default=True)
    on_bookings: Mapped[bool] = mapped_column(Boolean, default=True)
    on_failures: Mapped[bool] = mapped_column(Boolean, default=True)
    digest_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_time: Mapped[str] = mapped_column(String(5), default="18:00")  # local HH:MM
    confirmations_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    reminders_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    reminder_time: Mapped[str] = mapped_column(String(5), default="18:00")  # local HH:MM, the day before


class Notification(UUIDv7AuditBase):
    """One message to one recipient on one channel: a durable outbox row, created in the transaction of the
    event that caused it (`key` = event and channel, so an event notifies once), sent by a `notify` job."""

    __tablename__ = "notification"
    __table_args__ = (
        _enum_check("channel", NotificationChannel),
        _enum_check("status", NotificationStatus),
        Index("ix_notification_business_created", "business_id", "created_at"),
        Index("ix_notification_call", "call_id"),
        # Twilio's status callbacks find their text by its Message SID.
        Index("ix_notification_provider_id", "provider_id"),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    #: follow_up, call_failed, booked, rescheduled, cancelled, confirm_*, reminder, digest, test
    event: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(16), default="owner")  # owner | caller
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(320))
    call_id: Mapped[UUID | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"), default=None)
    appointment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("appointment.id", ondelete="SET NULL"), default=None
    )
    customer_id: Mapped[UUID | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), default=None)
    #: event details frozen when it happened (the appointment's time at booking, the digest's day)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    #: Twilio's Message SID, or the email's Message-ID
    provider_id: Mapped[str | None] = mapped_column(String(200), default=None)
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
    # How the owner was told: "billing page" plus the channels the warning was queued on ("billing page, email,
    # text"), or "billing page (superseded …)" for an 80 % reached together with 100 % (app.billing.warnings).
    delivered_by: Mapped[str] = mapped_column(String(80), default="billing page")


# -- issue 15: the real calendar (resources, closures, rules, Google Calendar) ---------------------------


class ResourceKind(StrEnum):
    PERSON = "person"
    ROOM = "room"


class Resource(UUIDv7AuditBase):
    """A person or room that takes bookings; each has its own lane in the calendar."""

    __tablename__ = "resource"
    __table_args__ = (
        _enum_check("kind", ResourceKind),
        UniqueConstraint("business_id", "name", name="uq_resource_business_name"),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default=ResourceKind.PERSON.value)
    # Same shape as Business.weekly_hours; None means the business's own hours.
    weekly_hours: Mapped[dict[str, list[list[str]]] | None] = mapped_column(JSON, default=None)
    # Names of the services this resource does; empty means every service.
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Closure(UUIDv7AuditBase):
    """One local date's exception: closed all day (no hours) or open at other hours, for the business or
    for one resource."""

    __tablename__ = "closure"
    __table_args__ = (Index("ix_closure_business_day", "business_id", "day"),)

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    resource_id: Mapped[UUID | None] = mapped_column(ForeignKey("resource.id", ondelete="CASCADE"), default=None)
    day: Mapped[date] = mapped_column(Date)
    # [["10:00", "14:00"]] for changed hours; [] for closed all day.
    hours: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(String(200), default="")


class BookingRules(UUIDv7AuditBase):
    """Padding around appointments and how soon / how far ahead they can be booked (one row a business)."""

    __tablename__ = "booking_rules"

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), unique=True)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=0)
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=90)
    # {"Colour": [10, 15]}: minutes before/after for one service, overriding the defaults above.
    service_buffers: Mapped[dict[str, list[int]]] = mapped_column(JSON, default=dict)


class CalendarAccount(UUIDv7AuditBase):
    """One Google account's calendar grant; the refresh token is encrypted at rest (app.calendar.crypto)."""

    __tablename__ = "calendar_account"
    __table_args__ = (UniqueConstraint("business_id", "email", name="uq_calendar_account_business_email"),)

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text, default="")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class CalendarLink(UUIDv7AuditBase):
    """A connected Google calendar: its busy times block availability (for one resource, or the whole
    business when resource_id is None), and bookings may be written to it."""

    __tablename__ = "calendar_link"
    __table_args__ = (UniqueConstraint("business_id", "google_id", name="uq_calendar_link_business_google"),)

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[UUID] = mapped_column(ForeignKey("calendar_account.id", ondelete="CASCADE"), index=True)
    google_id: Mapped[str] = mapped_column(String(1024))
    summary: Mapped[str] = mapped_column(String(300), default="")
    # calendarList accessRole: a freeBusyReader calendar is read through freeBusy, others through events.
    access_role: Mapped[str] = mapped_column(String(32), default="owner")
    resource_id: Mapped[UUID | None] = mapped_column(ForeignKey("resource.id", ondelete="SET NULL"), default=None)
    write_bookings: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_token: Mapped[str | None] = mapped_column(Text, default=None)
    channel_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    channel_token: Mapped[str | None] = mapped_column(String(128), default=None)
    channel_resource_id: Mapped[str | None] = mapped_column(String(255), default=None)
    channel_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class BusySource(StrEnum):
    EVENT = "event"  # a Google event marked busy
    FREEBUSY = "freebusy"  # a busy range from a free/busy-only calendar
    OWNER = "owner"  # time the owner blocked in the dashboard


class BusyBlock(UUIDv7AuditBase):
    """Time that can't be booked: synced from Google, or blocked by the owner. resource_id None blocks
    every resource."""

    __tablename__ = "busy_block"
    __table_args__ = (
        _enum_check("source", BusySource),
        CheckConstraint("ends_at > starts_at", name="positive_length"),
        Index("ix_busy_block_business_starts", "business_id", "starts_at"),
        UniqueConstraint("link_id", "external_id", name="uq_busy_block_link_external"),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    link_id: Mapped[UUID | None] = mapped_column(ForeignKey("calendar_link.id", ondelete="CASCADE"), default=None)
    resource_id: Mapped[UUID | None] = mapped_column(ForeignKey("resource.id", ondelete="CASCADE"), default=None)
    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(1024), default=None)
    starts_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    note: Mapped[str] = mapped_column(String(200), default="")
    # -- issue 15 (gaps: owner-blocked time in Google): the event an owner's block was written to, in which
    # calendar (SET NULL, not CASCADE like link_id: disconnecting a calendar must not unblock the owner's time).
    google_link_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("calendar_link.id", ondelete="SET NULL"), default=None
    )
    google_event_id: Mapped[str | None] = mapped_column(String(1024), default=None)


class CalendarConflict(UUIDv7AuditBase):
    """A booking that Google now disagrees with (an event created there at the same moment, or the
    booking's own event moved or deleted in Google): shown to the owner until resolved."""

    __tablename__ = "calendar_conflict"
    __table_args__ = (Index("ix_calendar_conflict_business_open", "business_id", "resolved_at"),)

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    appointment_id: Mapped[UUID] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"))
    block_id: Mapped[UUID | None] = mapped_column(ForeignKey("busy_block.id", ondelete="SET NULL"), default=None)
    reason: Mapped[str] = mapped_column(String(300))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
class AuditEntry(UUIDv7AuditBase):
    """Issue 8: what an owner or the operator did (who, what, when, from where). Append-only: the app
    inserts rows through `app.audit.record` and never updates or deletes one."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_business_created", "business_id", "created_at"),)

    # SET NULL rather than CASCADE on the user: an account going away must not take its history with it.
    business_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("business.id", ondelete="CASCADE"), default=None
    )
    actor_user_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None, index=True
    )
    # "owner" or "operator"; `actor_label` is the email (or the operator's name) as it was at the time.
    actor_kind: Mapped[str] = mapped_column(String(16), default="owner")
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client_ip: Mapped[str | None] = mapped_column(String(64), default=None)


class CallMove(UUIDv7AuditBase):
    """Issue 11: a live phone call handed from a draining instance to another one. The draining side writes
    the row (what the new realtime session needs that the Call row doesn't hold) and redirects the call to a
    stream whose single-use token names it; `released_at` says the old side wrote the record for the last
    time, `claimed_at` that the new side took the call over."""

    __tablename__ = "call_move"
    __table_args__ = (Index("ix_call_move_call", "call_id"),)

    call_id: Mapped[UUID] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    session_id: Mapped[UUID] = mapped_column(ForeignKey("call_session.id", ondelete="CASCADE"))
    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), index=True)
    token_nonce: Mapped[str] = mapped_column(String(64))
    #: the realtime session's configuration and the call's counters (turn, transfer asked) at the move
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    released_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    #: why the move was given up (the REST redirect failed), when it was
    cancelled: Mapped[str | None] = mapped_column(String(200), default=None)
# -- issue 16: outbound calls (click to call, confirmation/reminder calls, scheduled callbacks) ----------------


class OutboundKind(StrEnum):
    CLICK_TO_CALL = "click_to_call"  # the owner's phone first, then the customer (no AI)
    CONFIRMATION = "confirmation"  # the receptionist confirms an upcoming appointment
    CALLBACK = "callback"  # the receptionist calls a customer back about what the owner wrote


class OutboundStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time (or its next attempt)
    DIALING = "dialing"  # an attempt is on the line: counts against the business's concurrent-call cap
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"  # every attempt used up, refused, or skipped (opted out, no number)


class OutboundSettings(UUIDv7AuditBase):
    """How the receptionist may call out for a business (one row; absent: the defaults, calls off)."""

    __tablename__ = "outbound_settings"

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"), unique=True)
    #: the owner's own phone for "Call back" (empty: the notification settings' SMS number)
    owner_phone: Mapped[str] = mapped_column(String(20), default="")
    #: local wall-clock window, in the customer's time zone, when the receptionist may call
    calling_start: Mapped[str] = mapped_column(String(5), default="09:00")
    calling_end: Mapped[str] = mapped_column(String(5), default="19:00")
    #: {"Haircut": 24}: a confirmation call this many hours before each appointment of that service
    confirmation_hours: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_minutes: Mapped[int] = mapped_column(Integer, default=30)
    max_concurrent: Mapped[int] = mapped_column(Integer, default=2)


class OutboundCall(UUIDv7AuditBase):
    """One call the service places for a business, with its attempts (each attempt is a Call row pointing
    here through `Call.outbound_call_id`)."""

    __tablename__ = "outbound_call"
    __table_args__ = (
        _enum_check("kind", OutboundKind),
        _enum_check("status", OutboundStatus),
        Index("ix_outbound_call_business_status", "business_id", "status"),
        # One confirmation call per appointment and start time: the planner may run any number of times.
        UniqueConstraint("appointment_id", "appointment_starts_at", name="uq_outbound_call_appointment_start"),
    )

    business_id: Mapped[UUID] = mapped_column(ForeignKey("business.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=OutboundStatus.SCHEDULED.value)
    to_phone: Mapped[str] = mapped_column(String(20))
    customer_id: Mapped[UUID | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"), default=None)
    appointment_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE"), default=None, index=True
    )
    #: the start the confirmation is about: a moved appointment gets a new call, the old one is dropped
    appointment_starts_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    message_id: Mapped[UUID | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"), default=None,
                                                    index=True)
    #: what the owner wrote ("moving her appointment"); the receptionist says it and works from it
    purpose: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(35), default="en")
    scheduled_for: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_minutes: Mapped[int] = mapped_column(Integer, default=30)
    #: the attempt on the line now (its CallSid) and since when: a slot whose status callback never came is
    #: given back after a while rather than blocking the business's calls forever
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    dialing_since: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    answered_by: Mapped[str | None] = mapped_column(String(24), default=None)
    outcome: Mapped[str | None] = mapped_column(String(24), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    voicemail_text: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class RateLimitWindow(UUIDv7AuditBase):
    """Issue 10: one client's request count in its current window, shared by every worker and instance on the
    database (app.db.rate_limits: one atomic upsert per request). `key` names the limit and a hash of the
    client's address, never the address itself."""

    __tablename__ = "rate_limit_window"

    key: Mapped[str] = mapped_column(String(96), unique=True)
    window_start: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
