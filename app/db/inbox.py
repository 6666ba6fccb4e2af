"""The owner's inbox queries, scoped to one business like `BusinessScope`: messages and their states, the
attention list, notifications of a call, notification settings. Dashboard handlers use only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import (
    Appointment,
    AppointmentStatus,
    Business,
    Call,
    CallStatus,
    Job,
    JobStatus,
    Message,
    Notification,
    NotificationSettings,
    NotificationStatus,
    User,
)
from app.db.services import NotFound
from app.i18n.text import tr
from app.inbox.outbox import DEFAULTS, add_notification, owner_targets, schedule_digest
from app.inbox.outcomes import TRANSFER_FAILED
from app.jobs import job_id_for

MESSAGE_STATES = ("unread", "handled", "all")
LIST_LIMIT = 200
ATTENTION_LIMIT = 8
_CUT_OFF_REASONS = ("interrupted", "realtime_closed", "error", "openai_unavailable", "realtime_session_expired",
                    "shutdown")


def _like(text: str) -> str:
    import re

    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def outcome_condition(code: str) -> Any:
    """Calls whose stored outcome list holds `code` (a JSON array of plain codes, so a quoted match is exact)."""
    return cast(Call.outcomes, String).like(f'%"{code}"%')


@dataclass(slots=True)
class MessageRow:
    message: Message
    handled_by: str = ""


@dataclass(slots=True)
class Attention:
    unread: list[Message] = field(default_factory=list)
    unread_count: int = 0
    booked_today: list[Appointment] = field(default_factory=list)
    cancelled_today: list[Appointment] = field(default_factory=list)
    failed_calls: list[Call] = field(default_factory=list)
    failed_transfers: list[Call] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.unread or self.booked_today or self.cancelled_today or self.failed_calls
                    or self.failed_transfers)


class InboxScope:
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], business_id: UUID) -> None:
        self._sessions = session_maker
        self.business_id = business_id

    # -- messages -----------------------------------------------------------------------------------------
    async def unread_count(self) -> int:
        async with self._sessions() as s:
            return int(await s.scalar(select(func.count(Message.id)).where(
                Message.business_id == self.business_id, Message.handled_at.is_(None))) or 0)

    async def messages(self, *, state: str = "unread", q: str = "", customer_id: UUID | None = None,
                       limit: int = LIST_LIMIT) -> list[MessageRow]:
        query = (select(Message, User.name, User.email).outerjoin(User, User.id == Message.handled_by_id)
                 .where(Message.business_id == self.business_id))
        if state == "unread":
            query = query.where(Message.handled_at.is_(None))
        elif state == "handled":
            query = query.where(Message.handled_at.is_not(None))
        if customer_id is not None:
            query = query.where(Message.customer_id == customer_id)
        for word in q.split()[:8]:
            pattern = _like(word)
            query = query.where(or_(Message.body.ilike(pattern, escape="\\"),
                                    Message.caller_name.ilike(pattern, escape="\\"),
                                    Message.caller_phone.like(pattern, escape="\\")))
        # Urgent first among the unread, newest first otherwise.
        query = query.order_by((Message.urgency == "urgent").desc(), Message.created_at.desc()).limit(limit)
        async with self._sessions() as s:
            rows = (await s.execute(query)).tuples()
            return [MessageRow(m, name or email or "") for m, name, email in rows]

    async def message(self, message_id: UUID) -> MessageRow:
        async with self._sessions() as s:
            row = (await s.execute(
                select(Message, User.name, User.email).outerjoin(User, User.id == Message.handled_by_id)
                .where(Message.business_id == self.business_id, Message.id == message_id))).tuples().first()
        if row is None:
            raise NotFound("message not found")
        return MessageRow(row[0], row[1] or row[2] or "")

    async def set_handled(self, message_id: UUID, user_id: UUID, handled: bool) -> MessageRow:
        values: dict[str, Any] = (
            {"handled_at": datetime.now(UTC), "handled_by_id": user_id, "is_read": True} if handled
            else {"handled_at": None, "handled_by_id": None, "is_read": False}
        )
        async with self._sessions() as s, s.begin():
            result = await s.execute(update(Message).where(
                Message.business_id == self.business_id, Message.id == message_id).values(**values))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound("message not found")
        return await self.message(message_id)

    # -- calls --------------------------------------------------------------------------------------------
    async def notifications_for_call(self, call_id: UUID) -> list[Notification]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Notification).where(
                Notification.business_id == self.business_id, Notification.call_id == call_id)
                .order_by(Notification.created_at, Notification.channel)))

    async def messages_for_call(self, call_id: UUID) -> list[Message]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Message).where(
                Message.business_id == self.business_id, Message.call_id == call_id).order_by(Message.created_at)))

    async def attention(self, day_start: datetime, day_end: datetime) -> Attention:
        """What needs the owner first: unread messages, today's bookings and cancellations, today's calls that
        failed or were cut off, and failed transfers."""
        b = self.business_id
        out = Attention()
        async with self._sessions() as s:
            out.unread_count = int(await s.scalar(select(func.count(Message.id)).where(
                Message.business_id == b, Message.handled_at.is_(None))) or 0)
            out.unread = list(await s.scalars(select(Message).where(
                Message.business_id == b, Message.handled_at.is_(None))
                .order_by((Message.urgency == "urgent").desc(), Message.created_at.desc()).limit(ATTENTION_LIMIT)))
            out.booked_today = list((await s.scalars(select(Appointment).where(
                Appointment.business_id == b, Appointment.created_at >= day_start, Appointment.created_at < day_end)
                .order_by(Appointment.created_at.desc()).limit(ATTENTION_LIMIT))).unique())
            out.cancelled_today = list((await s.scalars(select(Appointment).where(
                Appointment.business_id == b, Appointment.status == AppointmentStatus.CANCELLED.value,
                Appointment.updated_at >= day_start, Appointment.updated_at < day_end)
                .order_by(Appointment.updated_at.desc()).limit(ATTENTION_LIMIT))).unique())
            out.failed_calls = list(await s.scalars(select(Call).where(
                Call.business_id == b, Call.started_at >= day_start, Call.started_at < day_end,
                or_(Call.status == CallStatus.FAILED.value, Call.end_reason.in_(_CUT_OFF_REASONS)))
                .order_by(Call.started_at.desc()).limit(ATTENTION_LIMIT)))
            out.failed_transfers = list(await s.scalars(select(Call).where(
                Call.business_id == b, Call.started_at >= day_start, Call.started_at < day_end,
                outcome_condition(TRANSFER_FAILED)).order_by(Call.started_at.desc()).limit(ATTENTION_LIMIT)))
        return out

    # -- settings -----------------------------------------------------------------------------------------
    async def preferences(self) -> NotificationSettings:
        async with self._sessions() as s:
            row = await s.scalar(select(NotificationSettings).where(
                NotificationSettings.business_id == self.business_id))
        return row if row is not None else NotificationSettings(business_id=self.business_id, **DEFAULTS)

    async def save_preferences(self, values: dict[str, Any], now: datetime) -> tuple[NotificationSettings, list[str]]:
        """Store the business's notification settings (creating its row on first save) and re-plan its digest;
        returns the row and the names of the fields that changed."""
        async with self._sessions() as s, s.begin():
            business = await s.get(Business, self.business_id)
            if business is None:
                raise NotFound("business not found")
            prefs = await s.scalar(select(NotificationSettings).where(
                NotificationSettings.business_id == self.business_id))
            if prefs is None:
                prefs = NotificationSettings(business_id=self.business_id, **DEFAULTS)
                s.add(prefs)
                before = dict(DEFAULTS)
            else:
                before = {k: getattr(prefs, k) for k in DEFAULTS}
            changed = [k for k, v in values.items() if before.get(k) != v]
            for key, value in values.items():
                setattr(prefs, key, value)
            await s.flush()
            await schedule_digest(s, business, prefs, now)
        return prefs, changed

    async def queue_test(self, channel: str, prefs: NotificationSettings, key: str) -> str | None:
        """Queue a test notification on `channel` to where a real one would go, even when that channel is turned
        off for now; returns its recipient, or None when there is no address to send to."""
        everything_on = NotificationSettings(business_id=self.business_id, **{
            **{k: getattr(prefs, k) for k in DEFAULTS}, "email_enabled": True, "sms_enabled": True})
        async with self._sessions() as s, s.begin():
            business = await s.get(Business, self.business_id)
            if business is None:
                raise NotFound("business not found")
            recipient = next((r for c, r in await owner_targets(s, business, everything_on) if c == channel), None)
            if recipient is None:
                return None
            await add_notification(s, business_id=self.business_id, key=key, event="test", channel=channel,
                                   recipient=recipient)
        return recipient

    async def notification_by_key(self, key: str) -> Notification | None:
        async with self._sessions() as s:
            return await s.scalar(select(Notification).where(
                Notification.business_id == self.business_id, Notification.key == key))

    # -- the outbox as the owner sees it (gaps: delivery states of digests, reminders, usage warnings) ----------
    async def recent_notifications(self, *, state: str = "all", limit: int = 50) -> list[Notification]:
        """The newest notifications of every kind (owner's and callers'), optionally only those in one
        `OUTBOX_STATES` state, newest first."""
        query = select(Notification).where(Notification.business_id == self.business_id)
        condition = outbox_state_condition(state)
        if condition is not None:
            query = query.where(condition)
        async with self._sessions() as s:
            return list(await s.scalars(query.order_by(Notification.created_at.desc()).limit(limit)))

    async def notifications_for_appointments(self, appointment_ids: list[UUID]) -> dict[UUID, list[Notification]]:
        """Each appointment's notifications (the caller's confirmation and reminder texts, the owner's), oldest
        first."""
        if not appointment_ids:
            return {}
        out: dict[UUID, list[Notification]] = {}
        async with self._sessions() as s:
            rows = await s.scalars(select(Notification).where(
                Notification.business_id == self.business_id, Notification.appointment_id.in_(appointment_ids))
                .order_by(Notification.created_at, Notification.channel))
            for n in rows:
                if n.appointment_id is not None:
                    out.setdefault(n.appointment_id, []).append(n)
        return out

    async def scheduled_reminders(self, appointments: list[Appointment]) -> dict[UUID, datetime]:
        """When each of the scope's appointments' reminder text is due to be queued (its `reminder` job, still
        waiting): the owner sees "reminder due …" before the text itself exists."""
        mine = {job_id_for(reminder_job_key(a)): a.id for a in appointments if a.business_id == self.business_id}
        if not mine:
            return {}
        async with self._sessions() as s:
            rows = await s.execute(select(Job.id, Job.run_after).where(
                Job.id.in_(list(mine)), Job.status.in_((JobStatus.PENDING.value, JobStatus.RUNNING.value))))
            return {mine[job_id]: run_after for job_id, run_after in rows}

    async def notifications_keyed(self, prefix: str) -> list[Notification]:
        """The notifications whose key starts with `prefix` (one event's, on every channel)."""
        async with self._sessions() as s:
            return list(await s.scalars(select(Notification).where(
                Notification.business_id == self.business_id, Notification.key.startswith(prefix, autoescape=True))
                .order_by(Notification.created_at, Notification.channel)))


#: the outbox list's filters: state name -> what it shows
OUTBOX_STATES = {"all": tr("All"), "problems": tr("Failed or retrying"), "waiting": tr("Waiting"), "sent": tr("Sent")}


def outbox_state_condition(state: str) -> Any:
    if state == "problems":
        return or_(Notification.status == NotificationStatus.FAILED.value,
                   (Notification.status == NotificationStatus.PENDING.value) & (Notification.attempts > 0))
    if state == "waiting":
        return Notification.status == NotificationStatus.PENDING.value
    if state == "sent":
        return Notification.status.in_((NotificationStatus.SENT.value, NotificationStatus.DELIVERED.value))
    return None


def reminder_job_key(appointment: Appointment) -> str:
    """The key `app.inbox.outbox.appointment_event` gives an appointment's day-before reminder job."""
    return f"reminder:{appointment.id}:{appointment.starts_at.astimezone(UTC).isoformat()}"
