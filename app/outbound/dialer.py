"""Placing the receptionist's calls and following them to their outcome, as durable jobs.

- `outbound_dial` (one per attempt, keyed by its time): checks the call may happen now — still wanted (the
  appointment unchanged, the service's confirmations still on), the customer not opted out, the number one
  the business has and may dial (the transfer rules' phonenumbers checks), inside the calling hours on the
  customer's clock, a free slot under the business's cap — then `Calls.create` with async AMD. Outside the
  hours or over the cap it queues itself for later; it never sleeps in the worker.
- Twilio's callbacks (app.outbound.routes) move the attempt on: answered by a person → the receptionist's
  media stream; a machine → the voicemail through a call update; no answer / busy / failed → the next
  attempt after the owner's spacing, or, with none left, the owner is told.
- `outbound_settle` (after an answered attempt's Call row is finalised) derives the outcome from the record
  — the appointment confirmed, moved or cancelled on the call, or the voicemail left — and writes it to the
  attempt's Call, the outbound row and the appointment's confirmation state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from babel.core import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.twiml.voice_response import VoiceResponse

from app.billing.usage import BillingScope
from app.db.engine import Database
from app.db.hours import HoursError, zone
from app.db.models import (
    Appointment,
    AppointmentStatus,
    Business,
    Call,
    Customer,
    Job,
    OutboundCall,
    OutboundKind,
    OutboundSettings,
    OutboundStatus,
    Session,
)
from app.db.phone import business_region, national_format, transfer_error
from app.i18n.languages import offered
from app.i18n.text import tr
from app.inbox.outbox import add_notification, owner_targets, preferences
from app.jobs import JobQueue, Permanent, complete, enqueue
from app.outbound.hours import customer_zones, next_calling_time
from app.outbound.lines import OutboundLines, greeting_name, lines_for
from app.outbound.store import (
    DIAL_JOB,
    SETTLE_JOB,
    claim_slot,
    finish,
    outbound_settings,
    release_for_retry,
    schedule_dial,
    set_call_sid,
)
from app.settings import Settings
from app.telephony.rest import TwilioCalls, TwilioRefused, TwilioUnavailable
from app.voice.lifecycle import record_outbound_attempt

log = logging.getLogger(__name__)

#: over the cap, look again this much later
CAP_WAIT = timedelta(seconds=30)
#: an answered attempt's Call row is finalised by its bridge; wait this long for it before settling anyway
SETTLE_WAIT = timedelta(minutes=30)
RING_SECONDS = 25
AI_KINDS = {OutboundKind.CONFIRMATION.value, OutboundKind.CALLBACK.value}
MACHINE_ENDS = {"machine_end_beep", "machine_end_silence", "machine_end_other"}
UNANSWERED = {"no-answer": "no_answer", "busy": "busy", "failed": "failed", "canceled": "no_answer"}


def business_zone(business: Business) -> ZoneInfo:
    try:
        return zone(business.timezone)
    except HoursError:
        return ZoneInfo("UTC")


def spoken_when(moment: datetime, tz: ZoneInfo, language: str) -> str:
    """"Tuesday 3 March at 10:00 AM" in the customer's language (Babel), on the business's clock."""
    try:
        locale = Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        locale = Locale("en")
    local = moment.astimezone(tz)
    return f"{format_date(local, 'EEEE d MMMM', locale=locale)}, {format_time(local, 'short', locale=locale)}"


def customer_language(customer: Customer | None) -> str:
    """The language to speak to a customer in: the one they last spoke on a call (issue 16), else English."""
    return (customer.language or "en-US") if customer is not None else "en-US"


class Dialer:
    """The outbound job kinds of one process, and what Twilio's callbacks do to an attempt."""

    def __init__(self, db: Database, settings: Settings, calls: TwilioCalls | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self._settings = settings
        self.calls = calls
        self._clock = clock
        self._jobs: JobQueue | None = None

    def register(self, jobs: JobQueue) -> None:
        self._jobs = jobs
        jobs.register(DIAL_JOB, self.dial, max_attempts=6, backoff_base=20.0)
        jobs.register(SETTLE_JOB, self.settle, max_attempts=60, backoff_base=2.0)

    def poke(self) -> None:
        if self._jobs is not None:
            self._jobs.poke()

    def url(self, path: str) -> str:
        return self._settings.public_base_url.rstrip("/") + path

    # -- the dial job -------------------------------------------------------------------------------------
    async def dial(self, job: Job) -> None:
        try:
            row_id = UUID(str(job.payload["outbound_call_id"]))
        except (KeyError, ValueError) as exc:
            raise Permanent("outbound job without its call") from exc
        now = self._clock()
        async with self._db.session() as s:
            row = await s.get(OutboundCall, row_id)
            if row is None or row.status != OutboundStatus.SCHEDULED.value:
                return  # cancelled, finished, or already dialing under another job
            if row.scheduled_for > now + timedelta(seconds=5):
                return  # moved later since this job was queued: the later job places it
            business = await s.get(Business, row.business_id)
            prefs = await outbound_settings(s, row.business_id)
            customer = await s.get(Customer, row.customer_id) if row.customer_id else None
            appointment = await s.get(Appointment, row.appointment_id) if row.appointment_id else None
        if business is None:
            return
        refusal = self._refusal(row, business, customer, appointment, prefs, now)
        if refusal is not None:
            status, outcome, reason, code = refusal
            async with self._db.session() as s, s.begin():
                await finish(s, row.id, status, outcome, error=reason, from_statuses=(OutboundStatus.SCHEDULED,))
                if status is OutboundStatus.FAILED:
                    await self._tell_owner(s, business, row, reason, code=code,
                                           detail=reason if code == "cant_call" else "")
            log.info("outbound call %s not placed: %s", row.id, outcome or status.value)
            self.poke()
            return
        zones = customer_zones(row.to_phone, business.timezone)
        at = next_calling_time(now, zones, prefs.calling_start, prefs.calling_end)
        if at is None:
            async with self._db.session() as s, s.begin():
                await finish(s, row.id, OutboundStatus.FAILED, "failed", error="no calling hours this week",
                             from_statuses=(OutboundStatus.SCHEDULED,))
            return
        if at > now + timedelta(seconds=1):
            await self._later(job, row, at)
            return
        decision = await BillingScope(self._db.session_maker, business.id, self._settings).answer_with_ai(now)
        if not decision.answer_with_ai:
            # The receptionist's calls use the plan's minutes like any other: none left, no call.
            async with self._db.session() as s, s.begin():
                await finish(s, row.id, OutboundStatus.FAILED, "failed", error="the plan's minutes are used up",
                             from_statuses=(OutboundStatus.SCHEDULED,))
                await self._tell_owner(s, business, row, "your plan's minutes are used up", code="minutes_used")
            return
        if not await claim_slot(self._db, row, cap=max(1, prefs.max_concurrent), now=now):
            await self._later(job, row, now + CAP_WAIT)
            return
        await self._place(row, business)

    def _refusal(self, row: OutboundCall, business: Business, customer: Customer | None,
                 appointment: Appointment | None, prefs: OutboundSettings, now: datetime
                 ) -> tuple[OutboundStatus, str | None, str, str] | None:
        """Why this call must not be placed: (status, outcome, the reason in English for the record, its code
        for the owner's notification in their language), or None."""
        if customer is not None and customer.calls_opted_out_at is not None:
            return OutboundStatus.FAILED, "opted_out", "the customer asked not to be called", "opted_out"
        if customer is None or customer.phone != row.to_phone:
            # Only a number the business already has for this customer is ever dialled.
            return (OutboundStatus.FAILED, "refused", "the number is not the customer's number on record",
                    "not_on_record")
        problem = transfer_error(row.to_phone, business_region(business.phone_number, business.timezone),
                                 allowed_regions=self._settings.transfer_allow_countries,
                                 allow_international=self._settings.transfer_allow_international)
        if problem:
            return OutboundStatus.FAILED, "refused", problem, "cant_call"
        if not business.phone_number:
            return (OutboundStatus.FAILED, "failed", "the business has no phone number to call from",
                    "no_business_number")
        if row.kind == OutboundKind.CONFIRMATION.value:
            current = (appointment is not None and appointment.status == AppointmentStatus.BOOKED.value
                       and row.appointment_starts_at is not None
                       and appointment.starts_at.astimezone(UTC) == row.appointment_starts_at.astimezone(UTC)
                       and appointment.starts_at > now)
            if not current:
                return OutboundStatus.CANCELLED, None, "the appointment was moved, cancelled or is past", "moved"
            if appointment is not None and appointment.service not in (prefs.confirmation_hours or {}):
                return OutboundStatus.CANCELLED, None, "confirmation calls are off for this service", "off"
        return None

    async def _later(self, job: Job, row: OutboundCall, at: datetime) -> None:
        async with self._db.session() as s, s.begin():
            moved = await s.execute(
                update(OutboundCall).where(OutboundCall.id == row.id,
                                           OutboundCall.status == OutboundStatus.SCHEDULED.value)
                .values(scheduled_for=at))
            if moved.rowcount:  # type: ignore[attr-defined]
                await schedule_dial(s, row.id, at)
            await complete(s, job)

    async def _place(self, row: OutboundCall, business: Business) -> None:
        assert business.phone_number is not None
        if self.calls is None:
            async with self._db.session() as s, s.begin():
                await finish(s, row.id, OutboundStatus.FAILED, "failed", error="Twilio is not configured")
            return
        base = f"/twilio/outbound/{row.id}"
        try:
            call_sid = await self.calls.place_call(
                to=row.to_phone, from_=business.phone_number, url=self.url(base + "/voice"),
                status_callback=self.url(base + "/status"), amd_callback=self.url(base + "/amd"),
                ring_seconds=RING_SECONDS)
        except TwilioRefused as exc:
            async with self._db.session() as s, s.begin():
                await finish(s, row.id, OutboundStatus.FAILED, "refused", error=str(exc))
                await self._tell_owner(s, business, row, str(exc), code="twilio_refused", detail=str(exc))
            return
        except TwilioUnavailable as exc:
            # Twilio may be back in a moment: give the slot and the attempt back, and let the job retry.
            async with self._db.session() as s, s.begin():
                await s.execute(update(OutboundCall).where(OutboundCall.id == row.id,
                                                           OutboundCall.status == OutboundStatus.DIALING.value)
                                .values(status=OutboundStatus.SCHEDULED.value, dialing_since=None,
                                        attempts=OutboundCall.attempts - 1, last_error=str(exc)))
            raise
        await set_call_sid(self._db, row.id, call_sid)
        log.info("outbound call %s: attempt placed (%s)", row.id, call_sid)

    # -- what Twilio tells us -----------------------------------------------------------------------------
    async def attempt(self, row_id: UUID, call_sid: str) -> OutboundCall | None:
        """The row this callback is about, if the CallSid is its attempt (adopting it if the callback beat
        `set_call_sid`)."""
        async with self._db.session() as s, s.begin():
            row = await s.get(OutboundCall, row_id)
            if row is None:
                return None
            if row.call_sid is None and row.status == OutboundStatus.DIALING.value:
                await s.execute(update(OutboundCall).where(OutboundCall.id == row_id, OutboundCall.call_sid.is_(None))
                                .values(call_sid=call_sid))
                row.call_sid = call_sid
        return row if row.call_sid == call_sid else None

    async def mark_call_outbound(self, row: OutboundCall, call_sid: str) -> None:
        """The receptionist's Call row of this attempt says it was placed by us (set as soon as we hear of it,
        so the live calls page shows the direction too)."""
        async with self._db.session() as s, s.begin():
            session_id = await s.scalar(select(Session.id).where(Session.twilio_call_sid == call_sid))
            if session_id is not None:
                await s.execute(update(Call).where(Call.session_id == session_id)
                                .values(direction="outbound", outbound_call_id=row.id))

    async def unanswered(self, row: OutboundCall, business: Business, call_sid: str, twilio_status: str,
                         started_at: datetime) -> None:
        """No answer, busy or failed: record the attempt, then retry after the owner's spacing, or report."""
        outcome = UNANSWERED.get(twilio_status, "no_answer")
        await record_outbound_attempt(self._db, business.id, call_sid=call_sid, to_phone=row.to_phone,
                                      outbound_call_id=row.id, outcome=outcome,
                                      end_reason=f"twilio_{twilio_status.replace('-', '_')}", started_at=started_at)
        now = self._clock()
        async with self._db.session() as s, s.begin():
            fresh = await s.get(OutboundCall, row.id)
            if fresh is None or fresh.status != OutboundStatus.DIALING.value or fresh.call_sid != call_sid:
                return  # a repeated callback, or the owner cancelled it meanwhile
            if fresh.attempts < fresh.max_attempts:
                await release_for_retry(s, row.id, at=now + timedelta(minutes=fresh.retry_minutes),
                                        error=f"attempt {fresh.attempts}: {outcome.replace('_', ' ')}")
            else:
                await finish(s, row.id, OutboundStatus.FAILED, outcome,
                             error=f"not reached after {fresh.attempts} attempts")
                await self._tell_owner(s, business, fresh,
                                       f"not reached after {fresh.attempts} attempts ({outcome.replace('_', ' ')})",
                                       code="not_reached", outcome=outcome)
                await self._set_confirmation(s, fresh, "no_answer")
        self.poke()

    async def answered_and_ended(self, row: OutboundCall, call_sid: str) -> None:
        """An answered attempt ended: settle it once its Call record is final."""
        async with self._db.session() as s, s.begin():
            await enqueue(s, SETTLE_JOB, {"outbound_call_id": str(row.id), "call_sid": call_sid},
                          key=f"outbound-settle:{call_sid}")
        self.poke()

    async def amd_result(self, row: OutboundCall, business: Business, call_sid: str, answered_by: str) -> None:
        """The asynchronous AMD verdict: a person (or unknown) goes on with the receptionist; a machine, once its
        greeting has ended, gets the voicemail; a fax is hung up on."""
        await self.mark_call_outbound(row, call_sid)
        if answered_by in MACHINE_ENDS:
            await self.machine_answered(row, business, call_sid, answered_by)
            return
        async with self._db.session() as s, s.begin():
            await s.execute(update(OutboundCall).where(OutboundCall.id == row.id).values(answered_by=answered_by))
        if answered_by == "fax" and self.calls is not None:
            try:
                await self.calls.hang_up(call_sid)
            except TwilioUnavailable as exc:
                log.warning("outbound call %s: could not hang up on a fax: %s", row.id, exc)

    async def machine_answered(self, row: OutboundCall, business: Business, call_sid: str, answered_by: str) -> None:
        """After the machine's greeting (and its beep): the short voicemail in the customer's language through a
        call update (which ends the receptionist's stream), then hang up."""
        async with self._db.session() as s:
            customer = await s.get(Customer, row.customer_id) if row.customer_id else None
            appointment = await s.get(Appointment, row.appointment_id) if row.appointment_id else None
        lines = lines_for(row.language or customer_language(customer))
        text = voicemail_text(lines, business, row, appointment)
        response = VoiceResponse()
        response.pause(length=1)
        response.say(text, language=lines.say_language, voice=lines.say_voice)
        response.hangup()
        async with self._db.session() as s, s.begin():
            await s.execute(update(OutboundCall).where(OutboundCall.id == row.id)
                            .values(answered_by=answered_by, voicemail_text=text))
        if self.calls is None:
            return
        try:
            await self.calls.redirect(call_sid, str(response))
        except TwilioUnavailable as exc:
            log.warning("outbound call %s: the voicemail could not be left: %s", row.id, exc)

    # -- settling -----------------------------------------------------------------------------------------
    async def settle(self, job: Job) -> None:
        try:
            row_id = UUID(str(job.payload["outbound_call_id"]))
            call_sid = str(job.payload["call_sid"])
        except (KeyError, ValueError) as exc:
            raise Permanent("settle job without its call") from exc
        async with self._db.session() as s, s.begin():
            row = await s.get(OutboundCall, row_id)
            if row is None:
                await complete(s, job)
                return
            call = await s.scalar(select(Call).join(Session, Session.id == Call.session_id)
                                  .where(Session.twilio_call_sid == call_sid))
            if call is not None and call.ended_at is None:
                if self._clock() - job.created_at < SETTLE_WAIT:
                    raise RuntimeError("the call is still being finalised")  # retried shortly
            appointment = await s.get(Appointment, row.appointment_id) if row.appointment_id else None
            outcome = self._outcome(row, appointment, call)
            if call is not None:
                await s.execute(update(Call).where(Call.id == call.id).values(
                    direction="outbound", outbound_call_id=row.id, outbound_outcome=outcome))
            await finish(s, row.id, OutboundStatus.DONE, outcome)
            await self._set_confirmation(s, row, outcome)
            await complete(s, job)
        log.info("outbound call %s settled: %s", row_id, outcome)
        self.poke()

    @staticmethod
    def _outcome(row: OutboundCall, appointment: Appointment | None, call: Call | None) -> str:
        if row.answered_by in MACHINE_ENDS and row.voicemail_text:
            return "voicemail_left"
        if row.answered_by == "fax":
            return "fax"
        if appointment is not None:
            if appointment.status == AppointmentStatus.CANCELLED.value:
                return "cancelled"
            if row.appointment_starts_at is not None and (
                    appointment.starts_at.astimezone(UTC) != row.appointment_starts_at.astimezone(UTC)):
                return "rescheduled"
            if appointment.confirmation == "confirmed" and appointment.confirmation_at is not None and (
                    call is None or appointment.confirmation_at >= call.started_at):
                return "confirmed"
        return "talked" if call is not None else "failed"

    async def _set_confirmation(self, s: AsyncSession, row: OutboundCall, outcome: str) -> None:
        if row.kind != OutboundKind.CONFIRMATION.value or row.appointment_id is None:
            return
        if outcome not in {"confirmed", "rescheduled", "cancelled", "voicemail_left", "no_answer", "talked"}:
            return
        await s.execute(update(Appointment).where(Appointment.id == row.appointment_id).values(
            confirmation="unconfirmed" if outcome == "talked" else outcome, confirmation_at=datetime.now(UTC)))

    async def _tell_owner(self, s: AsyncSession, business: Business, row: OutboundCall, reason: str, *,
                          code: str, detail: str = "", outcome: str = "") -> None:
        """The owner hears of a call the receptionist could not make (by their notification settings).
        `reason` is kept in English for the record; `code` (+ `detail`, `outcome`) lets the notification word
        it in the owner's language (app.inbox.texts)."""
        prefs = await preferences(s, business.id)
        if not prefs.on_failures:
            return
        customer = await s.get(Customer, row.customer_id) if row.customer_id else None
        for channel, recipient in await owner_targets(s, business, prefs):
            await add_notification(
                s, business_id=business.id, key=f"outbound_unreached:{row.id}:{channel}", event="outbound_unreached",
                channel=channel, recipient=recipient, customer_id=row.customer_id,
                appointment_id=row.appointment_id,
                details={"reason": reason, "reason_code": code, "detail": detail, "outcome": outcome,
                         "kind": row.kind, "purpose": row.purpose,
                         "customer_name": customer.name if customer else "", "customer_phone": row.to_phone,
                         "attempts": row.attempts},
            )


def opening_text(lines: OutboundLines, business: Business, row: OutboundCall, customer: Customer | None,
                 appointment: Appointment | None) -> str:
    """Who is calling and why: the receptionist's first words on an outbound call."""
    name = greeting_name(lines, customer.name if customer else None)
    if row.kind == OutboundKind.CONFIRMATION.value and appointment is not None:
        when = spoken_when(appointment.starts_at, business_zone(business), row.language)
        return lines.confirmation_opening.format(name=name, business=business.name, service=appointment.service,
                                                 when=when)
    return lines.callback_opening.format(name=name, business=business.name, purpose=row.purpose.strip())


def purpose_text(lines: OutboundLines, business: Business, row: OutboundCall, appointment: Appointment | None) -> str:
    """What the receptionist and the supervisor are told about why the business called."""
    if row.kind == OutboundKind.CONFIRMATION.value and appointment is not None:
        when = spoken_when(appointment.starts_at, business_zone(business), "en")
        return lines.confirmation_purpose.format(service=appointment.service, when=when,
                                                 appointment_id=appointment.id)
    return f"The owner asked you to call them back about: {row.purpose.strip()}"


def voicemail_text(lines: OutboundLines, business: Business, row: OutboundCall, appointment: Appointment | None) -> str:
    number = national_format(business.phone_number) if business.phone_number else ""
    if row.kind == OutboundKind.CONFIRMATION.value and appointment is not None:
        when = spoken_when(appointment.starts_at, business_zone(business), row.language)
        return lines.confirmation_voicemail.format(business=business.name, service=appointment.service, when=when,
                                                   number=number)
    return lines.callback_voicemail.format(business=business.name, purpose=row.purpose.strip(), number=number)


# -- click to call ------------------------------------------------------------------------------------------
class CallBackRefused(ValueError):
    """Why "Call back" can't ring now, in words for the owner."""


async def owner_phone_for(s: AsyncSession, business_id: UUID) -> str:
    prefs = await outbound_settings(s, business_id)
    if prefs.owner_phone:
        return prefs.owner_phone
    return (await preferences(s, business_id)).sms_to or ""


async def start_click_to_call(dialer: Dialer, business: Business, *, to_phone: str, customer_id: UUID | None,
                              message_id: UUID | None) -> OutboundCall:
    """Ring the owner's phone; when they pick up, they hear who is being called and Twilio dials the customer
    with the business's number as caller ID. `to_phone` must be a number the business already has (the
    message's, the call's or the customer's); both numbers pass the transfer rules. Raises CallBackRefused."""
    settings = dialer._settings
    region = business_region(business.phone_number, business.timezone)
    async with dialer._db.session() as s:
        owner_phone = await owner_phone_for(s, business.id)
        customer = await s.get(Customer, customer_id) if customer_id else None
    if not business.phone_number:
        raise CallBackRefused(tr("Your business has no phone number to call from yet (Settings → Number)."))
    if not owner_phone:
        raise CallBackRefused(tr("Add your own phone number under Settings → Calling out, so we can ring you first."))
    for number, yours in ((owner_phone, True), (to_phone, False)):
        problem = transfer_error(number, region, allowed_regions=settings.transfer_allow_countries,
                                 allow_international=settings.transfer_allow_international)
        if problem:
            raise CallBackRefused(tr("Your phone number can't be called: %(why)s", why=problem) if yours
                                  else tr("The customer's number can't be called: %(why)s", why=problem))
    if dialer.calls is None:
        raise CallBackRefused(tr("Twilio is not configured on this service."))
    now = dialer._clock()
    row = OutboundCall(business_id=business.id, kind=OutboundKind.CLICK_TO_CALL.value,
                       status=OutboundStatus.DIALING.value, to_phone=to_phone, customer_id=customer_id,
                       message_id=message_id, scheduled_for=now, attempts=1, max_attempts=1, dialing_since=now,
                       language=customer_language(customer))
    async with dialer._db.session() as s, s.begin():
        s.add(row)
        await s.flush()
    lines = lines_for(offered(business.languages)[0].code)  # the owner hears it: the business's main language
    response = VoiceResponse()
    response.say(lines.owner_whisper.format(name=(customer.name if customer and customer.name
                                                  else national_format(to_phone))),
                 language=lines.say_language, voice=lines.say_voice)
    dial = response.dial(caller_id=business.phone_number, timeout=30, answer_on_bridge=True,
                         action=dialer.url(f"/twilio/outbound/{row.id}/dialed"), method="POST")
    dial.number(to_phone)
    try:
        call_sid = await dialer.calls.place_call(
            to=owner_phone, from_=business.phone_number, twiml=str(response),
            status_callback=dialer.url(f"/twilio/outbound/{row.id}/status"), ring_seconds=30)
    except TwilioUnavailable as exc:
        async with dialer._db.session() as s, s.begin():
            await finish(s, row.id, OutboundStatus.FAILED, "failed", error=str(exc))
        raise CallBackRefused(tr("Twilio could not place the call: %(why)s", why=str(exc))) from exc
    await set_call_sid(dialer._db, row.id, call_sid)
    row.call_sid = call_sid
    return row


async def click_to_call_ended(dialer: Dialer, row: OutboundCall, call_sid: str, twilio_status: str,
                              duration: float) -> None:
    """The owner's leg ended: record it as an outbound call (linked to the message) with what it came to."""
    async with dialer._db.session() as s:
        fresh = await s.get(OutboundCall, row.id)
    dial_outcome = fresh.outcome if fresh is not None else None
    if twilio_status != "completed":
        outcome = "owner_no_answer"
    else:
        outcome = dial_outcome or "failed"
    await record_outbound_attempt(dialer._db, row.business_id, call_sid=call_sid, to_phone=row.to_phone,
                                  outbound_call_id=row.id, outcome=outcome,
                                  end_reason=f"click_to_call_{outcome}",
                                  started_at=row.dialing_since or dialer._clock(), duration_seconds=duration,
                                  answered=outcome == "connected")
    async with dialer._db.session() as s, s.begin():
        await finish(s, row.id, OutboundStatus.DONE if outcome == "connected" else OutboundStatus.FAILED, outcome,
                     from_statuses=(OutboundStatus.DIALING,))


async def click_to_call_dialed(dialer: Dialer, row: OutboundCall, dial_status: str) -> None:
    """`<Dial action>`: whether the customer picked up (kept until the owner's leg ends)."""
    outcome = {"completed": "connected", "answered": "connected", "busy": "busy"}.get(dial_status, "no_answer")
    async with dialer._db.session() as s, s.begin():
        await s.execute(update(OutboundCall).where(OutboundCall.id == row.id,
                                                   OutboundCall.status == OutboundStatus.DIALING.value)
                        .values(outcome=outcome))
