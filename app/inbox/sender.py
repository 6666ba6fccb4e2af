"""The jobs that send notifications (`notify`), queue reminders (`reminder`) and daily digests (`digest`).

Exactly once, as far as the outside service allows: a notification is marked sent in the same transaction
that completes its job, and a job runs again only while its notification is still pending. An SMTP or Twilio
outage is a retry with backoff (nothing is lost: the row and its job are in the database, across restarts);
a refusal fails it at once with the reason shown on the call page. The only window for a repeat is a crash
between the provider accepting the message and that commit; emails carry a fixed Message-ID so a repeat
folds into the first. Time comes from `clock`, so the reminder and digest rules run on a virtual clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import Database
from app.db.models import (
    Appointment,
    AppointmentStatus,
    Business,
    Call,
    Customer,
    Job,
    JobStatus,
    Message,
    Notification,
    NotificationChannel,
    NotificationSettings,
    NotificationStatus,
)
from app.inbox.channels import SMTP_TIMEOUT_SECONDS, EmailChannel, OptedOut, Refused, Retry, SmsChannel
from app.inbox.outbox import (
    DIGEST_JOB,
    NOTIFY_JOB,
    REMINDER_JOB,
    add_notification,
    business_tz,
    owner_targets,
    preferences,
    schedule_digest,
    vouched_phone,
)
from app.inbox.outcomes import SETTLE_JOB, settle_call
from app.inbox.schedule import reminder_due
from app.inbox.texts import Context, compose
from app.jobs import JobQueue, Permanent, complete, job_id_for
from app.settings import Settings
from app.telephony.rest import REQUEST_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12  # with a 2 s base, doubling to a 10-minute cap: about an hour of outage is ridden out
BACKOFF_BASE = 2.0
# A send is bounded by its channel's timeout (SMTP 20 s, Twilio REST 10 s): a worker killed mid-send delays the
# message by this much, not by the queue's five-minute default.
SEND_LEASE = timedelta(seconds=SMTP_TIMEOUT_SECONDS + REQUEST_TIMEOUT_SECONDS + 15)
#: how long an owner's notification about a call waits for the call to end and for its summary
CALL_WAIT = timedelta(minutes=20)
SUMMARY_WAIT = timedelta(seconds=60)
WAIT_STEP = timedelta(seconds=2)
#: while the call is still going on, look again this rarely: the call's settling wakes the job when it ends
# (every-2-seconds re-checks of a booking's notification during 20 live calls held up their writes).
CALL_WAIT_STEP = timedelta(seconds=30)
OWNER_EVENTS_WITH_SUMMARY = {"follow_up", "call_failed", "booked", "rescheduled", "cancelled"}


async def defer(s: AsyncSession, job: Job, until: datetime) -> None:
    """Put a claimed job back to wait until `until`, without counting the run as an attempt. (The worker's
    own settling is then a no-op: it only settles a job that is still running under this claim.)"""
    await s.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.RUNNING.value, Job.attempts == job.attempts)
        .values(status=JobStatus.PENDING.value, run_after=until, attempts=max(0, job.attempts - 1))
    )


class Notifier:
    """The `notify`, `reminder` and `digest` job kinds of one process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jobs: JobQueue | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._jobs = jobs
        self.email = EmailChannel(settings)
        self.sms = SmsChannel(settings)

    def register(self, jobs: JobQueue) -> None:
        self._jobs = jobs
        jobs.register(NOTIFY_JOB, self.send, max_attempts=MAX_ATTEMPTS, backoff_base=BACKOFF_BASE, lease=SEND_LEASE)
        jobs.register(REMINDER_JOB, self.remind, max_attempts=5)
        jobs.register(DIGEST_JOB, self.digest, max_attempts=5)
        jobs.register(SETTLE_JOB, self.settle, max_attempts=8)

    async def settle(self, job: Job) -> None:
        """A call just ended: its outcomes, customer link and the owner's notifications, with the job's
        completion in the same transaction."""
        try:
            call_id = UUID(str(job.payload["call_id"]))
        except (KeyError, ValueError) as exc:
            raise Permanent("settle job without a call id") from exc
        # In the writer queue: it runs as calls end, while others start (app/db/writer.py).
        async with self._db.write() as s:
            await settle_call(s, call_id)
            # Notifications queued during the call (a booking) were told to wait for its end: it has come.
            keys = list(await s.scalars(select(Notification.key).where(
                Notification.call_id == call_id, Notification.status == NotificationStatus.PENDING.value)))
            if keys:
                await s.execute(update(Job).where(
                    Job.id.in_([job_id_for(f"notify:{k}") for k in keys]), Job.status == JobStatus.PENDING.value
                ).values(run_after=self._clock()))
            await complete(s, job)
        self._poke()

    def _poke(self) -> None:
        if self._jobs is not None:
            self._jobs.poke()

    # -- notify -------------------------------------------------------------------------------------------
    async def _context(self, s: AsyncSession, n: Notification) -> Context | None:
        business = await s.get(Business, n.business_id)
        if business is None:
            return None
        ctx = Context(notification=n, business=business, base_url=self._settings.public_base_url)
        if n.call_id:
            ctx.call = await s.get(Call, n.call_id)
            ctx.messages = list(await s.scalars(
                select(Message).where(Message.call_id == n.call_id).order_by(Message.created_at)))
        customer_id = n.customer_id or (ctx.call.customer_id if ctx.call else None)
        if customer_id:
            ctx.customer = await s.get(Customer, customer_id)
        if n.appointment_id:
            ctx.appointment = await s.get(Appointment, n.appointment_id)
        if n.event == "digest":
            ctx.digest = await self._digest_numbers(s, business, n)
        return ctx

    async def _waits_for_summary(self, s: AsyncSession, n: Notification, now: datetime) -> bool:
        if n.audience != "owner" or n.call_id is None or n.event not in OWNER_EVENTS_WITH_SUMMARY:
            return False
        call = await s.get(Call, n.call_id)
        if call is None:
            return False
        if call.ended_at is None:
            return now - n.created_at < CALL_WAIT
        if call.summary or now - call.ended_at >= SUMMARY_WAIT:
            return False
        summary_job = await s.get(Job, job_id_for(f"summary:{call.id}"))
        return summary_job is not None and summary_job.status in {JobStatus.PENDING.value, JobStatus.RUNNING.value}

    async def send(self, job: Job) -> None:
        key = str(job.payload.get("key") or "")
        now = self._clock()
        async with self._db.session() as s, s.begin():
            n = await s.scalar(select(Notification).where(Notification.key == key))
            if n is None:
                raise Permanent("notification not found")
            if n.status != NotificationStatus.PENDING.value:
                await complete(s, job)  # already sent (or settled) by an earlier run: never twice
                return
            if await self._waits_for_summary(s, n, now):
                live = n.call_id is not None and (await s.get(Call, n.call_id)).ended_at is None  # type: ignore[union-attr]
                await defer(s, job, now + (CALL_WAIT_STEP if live else WAIT_STEP))
                return
            ctx = await self._context(s, n)
            if ctx is None:
                raise Permanent("the business is gone")
            if n.audience == "caller" and ctx.customer is not None and ctx.customer.sms_opted_out_at is not None:
                await self._settle(s, job, n, NotificationStatus.SKIPPED, error="the caller opted out of texts")
                return
            text = compose(ctx)
            n.subject, n.body = text.subject, text.body
            from_number = ctx.business.phone_number
            notification_id = n.id
        try:
            if n.channel == NotificationChannel.EMAIL.value:
                domain = (self._settings.smtp_from.rpartition("@")[2] or "receptionist").strip(">")
                provider_id = await self.email.send(to=n.recipient, subject=text.subject, body=text.body,
                                                    message_id=f"<notification-{notification_id}@{domain}>")
            else:
                provider_id = await self.sms.send(to=n.recipient, from_=from_number, body=text.body)
        except OptedOut as exc:
            async with self._db.session() as s, s.begin():
                if n.customer_id:
                    await s.execute(update(Customer).where(Customer.id == n.customer_id,
                                                           Customer.sms_opted_out_at.is_(None))
                                    .values(sms_opted_out_at=now))
                await self._settle(s, job, n, NotificationStatus.SKIPPED, error=str(exc), text=text)
            return
        except Refused as exc:
            async with self._db.session() as s, s.begin():
                await self._settle(s, job, n, NotificationStatus.FAILED, error=str(exc), text=text)
            return
        except Retry as exc:
            gave_up = job.attempts >= MAX_ATTEMPTS
            async with self._db.session() as s, s.begin():
                await s.execute(update(Notification).where(Notification.id == notification_id).values(
                    attempts=job.attempts, last_error=str(exc),
                    status=NotificationStatus.FAILED.value if gave_up else NotificationStatus.PENDING.value,
                    subject=text.subject, body=text.body, updated_at=now))
            if gave_up:
                raise Permanent(str(exc)) from exc
            raise
        async with self._db.session() as s, s.begin():
            await s.execute(update(Notification).where(Notification.id == notification_id).values(
                status=NotificationStatus.SENT.value, sent_at=self._clock(), provider_id=provider_id,
                attempts=job.attempts, last_error=None, subject=text.subject, body=text.body, updated_at=now))
            await complete(s, job)
        log.info("notification %s sent by %s (attempt %d)", n.event, n.channel, job.attempts)

    async def _settle(self, s: AsyncSession, job: Job, n: Notification, status: NotificationStatus, *,
                      error: str, text: Any = None) -> None:
        values: dict[str, Any] = {"status": status.value, "last_error": error, "attempts": job.attempts,
                                  "updated_at": self._clock()}
        if text is not None:
            values.update(subject=text.subject, body=text.body)
        await s.execute(update(Notification).where(Notification.id == n.id).values(**values))
        await complete(s, job)

    # -- reminders ----------------------------------------------------------------------------------------
    async def remind(self, job: Job) -> None:
        """The day before an appointment, at the owner's chosen time: queue the caller's reminder text."""
        now = self._clock()
        try:
            appointment_id = UUID(str(job.payload["appointment_id"]))
            stamp = str(job.payload["starts_at"])
        except (KeyError, ValueError) as exc:
            raise Permanent("reminder job without an appointment") from exc
        async with self._db.session() as s, s.begin():
            appointment = await s.get(Appointment, appointment_id)
            business = await s.get(Business, appointment.business_id) if appointment else None
            current = (appointment is not None and business is not None
                       and appointment.status == AppointmentStatus.BOOKED.value
                       and appointment.starts_at.astimezone(UTC).isoformat() == stamp
                       and appointment.starts_at > now)
            if not current or appointment is None or business is None:
                await complete(s, job)  # cancelled, moved (the move queued its own reminder) or already past
                return
            prefs = await preferences(s, business.id)
            if not prefs.reminders_enabled:
                await complete(s, job)
                return
            due = reminder_due(appointment.starts_at, business_tz(business), prefs.reminder_time)
            if due > now + timedelta(seconds=30):  # the owner moved the reminder time later since
                await defer(s, job, due)
                return
            customer = await s.get(Customer, appointment.customer_id)
            phone = await vouched_phone(s, business.id, customer, appointment.call_id) if customer else None
            if customer is None or phone is None or customer.sms_opted_out_at is not None:
                await complete(s, job)
                return
            await add_notification(
                s, business_id=business.id, key=f"reminder:{appointment.id}:{stamp}:sms", event="reminder",
                channel=NotificationChannel.SMS.value, recipient=phone, audience="caller",
                appointment_id=appointment.id, customer_id=customer.id,
                details={"service": appointment.service, "starts_at": stamp, "customer_name": customer.name,
                         "customer_phone": customer.phone},
            )
            await complete(s, job)
        self._poke()

    # -- daily digest -------------------------------------------------------------------------------------
    async def _digest_numbers(self, s: AsyncSession, business: Business, n: Notification) -> dict[str, Any]:
        end = n.created_at
        start = end - timedelta(days=1)
        calls = await s.scalar(select(func.count(Call.id)).where(
            Call.business_id == business.id, Call.started_at >= start, Call.started_at < end))
        follow_ups = await s.scalar(select(func.count(Call.id)).where(
            Call.business_id == business.id, Call.started_at >= start, Call.started_at < end,
            Call.needs_follow_up.is_(True)))
        unread = await s.scalar(select(func.count(Message.id)).where(
            Message.business_id == business.id, Message.handled_at.is_(None)))
        bookings = await s.scalar(select(func.count(Appointment.id)).where(
            Appointment.business_id == business.id, Appointment.created_at >= start, Appointment.created_at < end))
        cancellations = await s.scalar(select(func.count(Appointment.id)).where(
            Appointment.business_id == business.id, Appointment.status == AppointmentStatus.CANCELLED.value,
            Appointment.updated_at >= start, Appointment.updated_at < end))
        waiting = list(await s.scalars(select(Message).where(
            Message.business_id == business.id, Message.handled_at.is_(None))
            .order_by(Message.created_at.desc()).limit(10)))
        return {"calls": calls or 0, "follow_ups": follow_ups or 0, "unread": unread or 0,
                "bookings": bookings or 0, "cancellations": cancellations or 0,
                # (who, first words): worded in the owner's language by app.inbox.texts
                "waiting": [(m.caller_name or m.caller_phone or "", m.body[:140]) for m in waiting]}

    async def digest(self, job: Job) -> None:
        now = self._clock()
        try:
            business_id = UUID(str(job.payload["business_id"]))
            day, at = str(job.payload["day"]), str(job.payload["at"])
        except (KeyError, ValueError) as exc:
            raise Permanent("digest job without a business") from exc
        async with self._db.session() as s, s.begin():
            business = await s.get(Business, business_id)
            if business is None:
                await complete(s, job)
                return
            prefs = await preferences(s, business.id)
            # A digest queued before the owner changed the time (or turned it off) is dropped; the save
            # queued the next one at the new time.
            if prefs.digest_enabled and prefs.digest_time == at:
                for channel, recipient in await owner_targets(s, business, prefs):
                    await add_notification(
                        s, business_id=business.id, key=f"digest:{business.id}:{day}:{channel}", event="digest",
                        channel=channel, recipient=recipient, details={"day": day},
                    )
                await schedule_digest(s, business, prefs, now + timedelta(seconds=1))
            await complete(s, job)
        self._poke()

    async def schedule_all_digests(self) -> None:
        """At start-up: every business with a digest has its next one queued (keyed: harmless if it is)."""
        now = self._clock()
        async with self._db.session() as s, s.begin():
            rows = list(await s.scalars(select(NotificationSettings).where(NotificationSettings.digest_enabled)))
            for prefs in rows:
                business = await s.get(Business, prefs.business_id)
                if business is not None:
                    await schedule_digest(s, business, prefs, now)
