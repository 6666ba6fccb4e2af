"""Notifications are created here, inside the transaction of the event that causes them (an outbox).

Each notification is a `Notification` row whose `key` names the event and the channel
(`follow_up:<call>:email`, `booked:<appointment>:<start>:sms`, …) plus a keyed `notify` job: replaying an
event (a retried webhook, a second finalisation attempt) inserts neither twice. The job sends it later
(`app.inbox.sender`); what the owner chose (`NotificationSettings`) is read here, at the event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.hours import HoursError, zone
from app.db.models import (
    Appointment,
    Business,
    Call,
    Channel,
    Customer,
    Notification,
    NotificationChannel,
    NotificationSettings,
    NotificationStatus,
    User,
)
from app.inbox.outcomes import FAILED, Outcome
from app.inbox.schedule import next_digest, reminder_due
from app.jobs import enqueue, job_id_for

NOTIFY_JOB = "notify"
REMINDER_JOB = "reminder"
DIGEST_JOB = "digest"

#: what a business gets before it saves its own notification settings
DEFAULTS: dict[str, Any] = {
    "email_enabled": True, "email_to": "", "sms_enabled": False, "sms_to": "", "on_follow_up": True,
    "on_bookings": True, "on_failures": True, "digest_enabled": False, "digest_time": "18:00",
    "confirmations_enabled": False, "reminders_enabled": False, "reminder_time": "18:00",
}


async def preferences(s: AsyncSession, business_id: UUID) -> NotificationSettings:
    row = await s.scalar(select(NotificationSettings).where(NotificationSettings.business_id == business_id))
    return row if row is not None else NotificationSettings(business_id=business_id, **DEFAULTS)


def business_tz(business: Business) -> Any:
    try:
        return zone(business.timezone)
    except HoursError:
        return UTC


async def owner_targets(s: AsyncSession, business: Business, prefs: NotificationSettings) -> list[tuple[str, str]]:
    """(channel, recipient) for each way the owner wants to be told."""
    targets: list[tuple[str, str]] = []
    if prefs.email_enabled:
        address = prefs.email_to or await s.scalar(select(User.email).where(User.id == business.owner_id))
        if address:
            targets.append((NotificationChannel.EMAIL.value, address))
    if prefs.sms_enabled and prefs.sms_to:
        targets.append((NotificationChannel.SMS.value, prefs.sms_to))
    return targets


async def add_notification(
    s: AsyncSession,
    *,
    business_id: UUID,
    key: str,
    event: str,
    channel: str,
    recipient: str,
    audience: str = "owner",
    call_id: UUID | None = None,
    appointment_id: UUID | None = None,
    customer_id: UUID | None = None,
    details: dict[str, Any] | None = None,
    run_after: datetime | None = None,
) -> None:
    """Insert the notification and its send job in `s`'s transaction; the same key twice is a no-op."""
    now = datetime.now(UTC)
    await s.execute(
        insert(Notification)
        .values(
            id=job_id_for(f"notification:{key}"), business_id=business_id, key=key, event=event, audience=audience,
            channel=channel, recipient=recipient, call_id=call_id, appointment_id=appointment_id,
            customer_id=customer_id, details=details or {}, status=NotificationStatus.PENDING.value, attempts=0,
            subject="", body="", created_at=now, updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Notification.key])
    )
    await enqueue(s, NOTIFY_JOB, {"key": key}, key=f"notify:{key}", run_after=run_after)


async def notify_call(s: AsyncSession, call: Call, outcome: Outcome, customer_id: UUID | None = None) -> None:
    """A finished call the owner must act on (or that failed) tells the owner, per their settings."""
    prefs = await preferences(s, call.business_id)
    if FAILED in outcome.codes:
        if not prefs.on_failures:
            return
        event = "call_failed"
    elif outcome.needs_follow_up and prefs.on_follow_up:
        event = "follow_up"
    else:
        return
    business = await s.get(Business, call.business_id)
    if business is None:
        return
    targets = await owner_targets(s, business, prefs)  # every read before the first write
    for channel, recipient in targets:
        await add_notification(
            s, business_id=business.id, key=f"{event}:{call.id}:{channel}", event=event, channel=channel,
            recipient=recipient, call_id=call.id, customer_id=customer_id,
            details={"outcomes": list(outcome.codes)},
        )


async def vouched_phone(s: AsyncSession, business_id: UUID, customer: Customer, call_id: UUID | None) -> str | None:
    """The customer's number when a phone line vouched for it (a Twilio call came from it), else None:
    a number a caller only said aloud is never texted."""
    if call_id is not None:
        call = await s.get(Call, call_id)
        if call is not None and call.channel == Channel.TWILIO.value and call.caller_phone == customer.phone:
            return customer.phone
    known = await s.scalar(
        select(Call.id).where(Call.business_id == business_id, Call.channel == Channel.TWILIO.value,
                              Call.caller_phone == customer.phone).limit(1)
    )
    return customer.phone if known is not None else None


def _appointment_details(appointment: Appointment, customer: Customer) -> dict[str, Any]:
    return {
        "service": appointment.service, "starts_at": appointment.starts_at.isoformat(),
        "customer_name": customer.name, "customer_phone": customer.phone,
    }


@dataclass(slots=True)
class EventContext:
    """What an appointment event needs to know about the business, read before the booking transaction takes
    the write lock (bookings of one business run one at a time; reads inside would lengthen every wait)."""

    business: Business
    prefs: NotificationSettings
    targets: list[tuple[str, str]]
    call: Call | None


async def event_context(s: AsyncSession, business_id: UUID, call_id: UUID | None) -> EventContext | None:
    business = await s.get(Business, business_id)
    if business is None:
        return None
    prefs = await preferences(s, business_id)
    targets = await owner_targets(s, business, prefs) if prefs.on_bookings else []
    call = await s.get(Call, call_id) if call_id is not None else None
    return EventContext(business, prefs, targets, call)


async def appointment_event(
    s: AsyncSession,
    appointment: Appointment,
    kind: str,
    *,
    call_id: UUID | None = None,
    by_owner: bool = False,
    now: datetime | None = None,
    context: EventContext | None = None,
) -> None:
    """`kind`: booked | rescheduled | cancelled. Tells the owner (unless they did it), confirms to the caller by
    SMS when the business turned confirmations on, and schedules the day-before reminder. With `context`
    (read beforehand) the only statements here are the customer (usually already in the session) and the
    outbox inserts."""
    now = now or datetime.now(UTC)
    ctx = context or await event_context(s, appointment.business_id, call_id)
    customer = await s.get(Customer, appointment.customer_id)
    if ctx is None or customer is None:
        return
    business, prefs = ctx.business, ctx.prefs
    stamp = appointment.starts_at.astimezone(UTC).isoformat()
    details = _appointment_details(appointment, customer)
    if prefs.on_bookings and not by_owner:
        for channel, recipient in ctx.targets:
            await add_notification(
                s, business_id=business.id, key=f"{kind}:{appointment.id}:{stamp}:{channel}", event=kind,
                channel=channel, recipient=recipient, call_id=call_id, appointment_id=appointment.id,
                customer_id=customer.id, details=details,
            )
    wants_texts = prefs.confirmations_enabled or (prefs.reminders_enabled and kind in {"booked", "rescheduled"})
    if not wants_texts or not business.phone_number or customer.sms_opted_out_at is not None:
        return
    call = ctx.call
    if call is not None and call.channel == Channel.TWILIO.value and call.caller_phone == customer.phone:
        phone: str | None = customer.phone
    else:
        phone = await vouched_phone(s, business.id, customer, None)
    if phone is None:
        return
    if prefs.confirmations_enabled:
        await add_notification(
            s, business_id=business.id, key=f"confirm_{kind}:{appointment.id}:{stamp}:sms", event=f"confirm_{kind}",
            channel=NotificationChannel.SMS.value, recipient=phone, audience="caller", call_id=call_id,
            appointment_id=appointment.id, customer_id=customer.id, details=details,
        )
    if prefs.reminders_enabled and kind in {"booked", "rescheduled"}:
        due = reminder_due(appointment.starts_at, business_tz(business), prefs.reminder_time)
        if due > now:  # booked after the reminder time of the day before: the confirmation is the reminder
            await enqueue(
                s, REMINDER_JOB, {"appointment_id": str(appointment.id), "starts_at": stamp},
                key=f"reminder:{appointment.id}:{stamp}", run_after=due,
            )


async def schedule_digest(s: AsyncSession, business: Business, prefs: NotificationSettings, now: datetime) -> None:
    """The next daily digest job (keyed by business and local day, so scheduling twice is harmless)."""
    if not prefs.digest_enabled:
        return
    day, moment = next_digest(now, business_tz(business), prefs.digest_time)
    await enqueue(
        s, DIGEST_JOB, {"business_id": str(business.id), "day": day.isoformat(), "at": prefs.digest_time},
        key=f"digest:{business.id}:{day.isoformat()}", run_after=moment,
    )
