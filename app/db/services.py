"""The service layer: every read and write goes through a `BusinessScope`, which fixes one business id.

Each method is its own short unit of work on a fresh session, so a booking transaction never inherits a
read snapshot from earlier work (that ordering is what makes concurrent bookings safe on SQLite/libSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from app.db.engine import find_or_create
from app.db.hours import Interval, free_starts
from app.db.models import Appointment, AppointmentStatus, Business, Call, Customer, Message
from app.db.phone import PhoneError, business_region, normalize_phone
from app.db.scheduling import (
    Actor,
    Lane,
    LaneError,
    Setup,
    changes_committed,
    lane_busy,
    lane_open_for,
    lane_opening,
    lanes_for,
    load_setup,
    pick_lane,
    record_change,
    slot_for,
)
from app.i18n.text import message_of, tr
from app.inbox.outbox import EventContext, event_context

MAX_AVAILABILITY_DAYS = 31
# Busy look-ups around a slot reach this far past its padding, so a neighbour's own buffers are seen.
MAX_BUFFER = timedelta(hours=12)


class ServiceError(Exception):
    """A request the business rules refuse; `code` is stable for tools and the dashboard."""

    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    code = "not_found"


class SlotTaken(ServiceError):
    code = "slot_taken"


class OutsideHours(ServiceError):
    code = "outside_hours"


class NotYourAppointment(ServiceError):
    code = "not_your_appointment"


class NotVerified(ServiceError):
    """Would read or change a person's record for a caller whose number nobody vouched for."""

    code = "caller_not_verified"


def find_service(business: Business, name: str) -> dict[str, Any]:
    wanted = name.strip().lower()
    services = business.services or []
    for service in services:
        if service["name"].lower() == wanted:
            return service
    matches = [s for s in services if wanted in s["name"].lower() or s["name"].lower() in wanted]
    if len(matches) == 1:
        return matches[0]
    offered = ", ".join(s["name"] for s in services) or tr("none")
    raise ServiceError(tr("no service called %(name)s; services offered: %(offered)s", name=repr(name),
                          offered=offered))


@dataclass(frozen=True, slots=True)
class NewCustomer:
    """A booking's customer not yet known: saved in the booking's own transaction, so a refused booking (slot
    taken, outside hours, in the past) leaves no customer behind."""

    phone: str
    name: str
    verified: bool = True  # False: only what a caller said on a line without caller ID (issue 8)


URGENCIES = ("low", "normal", "urgent")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ServiceError(tr("times must include a UTC offset or be given in the business's local time"))
    return value.astimezone(UTC)


class BusinessScope:
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], business_id: UUID) -> None:
        self._sessions = session_maker
        self.business_id = business_id
        self._region: str | None = None

    async def region(self) -> str:
        """Where numbers typed without a country code are read (the business's number's, else its
        timezone's country); looked up once per scope."""
        if self._region is None:
            business = await self.business()
            self._region = business_region(business.phone_number, business.timezone)
        return self._region

    async def _number(self, phone: str) -> str:
        """E.164 for `phone`: as is when international, else read in the business's region."""
        try:
            if phone.strip().startswith(("+", "00")):
                return normalize_phone(phone, None)
            return normalize_phone(phone, await self.region())
        except PhoneError as exc:
            raise ServiceError(message_of(exc)) from None

    # -- business -----------------------------------------------------------------------------------------
    async def business(self) -> Business:
        async with self._sessions() as s:
            business = await s.get(Business, self.business_id)
            if business is None:
                raise NotFound("business not found")
            return business

    # -- customers ----------------------------------------------------------------------------------------
    async def customer_by_phone(self, phone: str) -> Customer | None:
        number = await self._number(phone)
        async with self._sessions() as s:
            return await s.scalar(
                select(Customer).where(Customer.business_id == self.business_id, Customer.phone == number)
            )

    async def recent_customers(self, limit: int = 50) -> list[Customer]:
        """The customers the owner can pretend to be on a browser test call, most recently added first."""
        async with self._sessions() as s:
            rows = await s.scalars(select(Customer).where(Customer.business_id == self.business_id)
                                   .order_by(Customer.created_at.desc()).limit(limit))
            return list(rows)

    async def get_customer(self, customer_id: UUID) -> Customer:
        async with self._sessions() as s:
            customer = await s.scalar(
                select(Customer).where(Customer.business_id == self.business_id, Customer.id == customer_id)
            )
            if customer is None:
                raise NotFound("customer not found")
            return customer

    async def save_customer(
        self, phone: str, *, name: str | None = None, email: str | None = None, notes: str | None = None,
        verified: bool = True,
    ) -> Customer:
        """Find the customer by phone or create them; given fields overwrite stored ones.

        `verified=False` (the number is only what a caller said) may create a customer, never change one: an
        existing customer raises `NotVerified`, whatever race led here."""
        number = await self._number(phone)

        async def save(s: AsyncSession) -> Customer:
            customer = await s.scalar(
                select(Customer).where(Customer.business_id == self.business_id, Customer.phone == number)
            )
            if customer is None:
                customer = Customer(business_id=self.business_id, phone=number, name=name or "",
                                    phone_verified=verified)
                s.add(customer)
            elif not verified:
                raise NotVerified("this number belongs to an existing customer")
            elif not customer.phone_verified:
                customer.phone_verified = True  # a call from the number itself confirms it
            if name:
                customer.name = name
            if email is not None:
                customer.email = email or None
            if notes:
                customer.notes = notes
            await s.flush()
            return customer

        try:
            return await find_or_create(self._sessions, save)
        except IntegrityError:
            raise ServiceError(tr("could not save the customer; try again")) from None

    # -- availability and booking -------------------------------------------------------------------------
    # Resources, closures, buffers and rules live in app.db.scheduling; these methods are the transactions.
    async def setup(self, *, closures_from: date | None = None) -> Setup:
        async with self._sessions() as s:
            business = await s.get(Business, self.business_id)
            if business is None:
                raise NotFound("business not found")
            return await load_setup(s, business, closures_from=closures_from)

    @staticmethod
    def _lanes(setup: Setup, service_name: str, resource: str | None) -> list[Lane]:
        try:
            return lanes_for(setup, service_name, resource)
        except LaneError as exc:
            raise ServiceError(message_of(exc)) from None

    async def availability_by_lane(
        self,
        service_name: str,
        first: date,
        last: date | None = None,
        *,
        now: datetime | None = None,
        resource: str | None = None,
        limit: int = 500,
    ) -> tuple[dict[str, Any], Setup, list[tuple[datetime, list[Lane]]]]:
        """Free start times (local, in order) for a service on local dates first..last, each with the lanes
        free then. Iterate it as pairs: on a fall-back night two keys compare equal yet are an hour apart."""
        last = last or first
        if last < first:
            raise ServiceError(tr("the end date is before the start date"))
        if (last - first).days > MAX_AVAILABILITY_DAYS:
            raise ServiceError(tr("ask for at most %(days)s days at a time", days=MAX_AVAILABILITY_DAYS))
        setup = await self.setup(closures_from=first)
        service = find_service(setup.business, service_name)
        lanes = self._lanes(setup, service["name"], resource)
        tz = setup.tz
        moment = now or datetime.now(UTC)
        earliest, latest = setup.rules.window(moment)
        before, after = setup.rules.buffers(service["name"])
        window_start = datetime.combine(first - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        window_end = datetime.combine(last + timedelta(days=2), datetime.min.time(), tzinfo=UTC)
        by_start: dict[datetime, list[Lane]] = {}
        async with self._sessions() as s:
            for lane in lanes:
                busy = await lane_busy(s, self.business_id, lane, window_start - before, window_end + after)
                for start in free_starts(
                    lane_opening(setup, lane, first, last), tz, first, last,
                    timedelta(minutes=int(service["minutes"])), busy.actual, padded_busy=busy.padded,
                    before=before, after=after, now=earliest, latest=latest, limit=limit,
                ):
                    # Keyed by the UTC instant: two local 01:30s on a fall-back night compare equal in one zone.
                    by_start.setdefault(start.astimezone(UTC), []).append(lane)
        # Each lane stopped at its first `limit` starts; the union's first `limit` are still exact (a start
        # ranks no later within its own lanes than in the union), and so are the lanes free at each.
        ordered = sorted(by_start.items())
        return service, setup, [(s.astimezone(tz), lanes) for s, lanes in ordered[:limit]]

    async def availability(
        self, service_name: str, first: date, last: date | None = None, *, now: datetime | None = None,
        resource: str | None = None,
    ) -> tuple[dict[str, Any], list[datetime]]:
        """Free local start times for a service on local dates first..last (any lane)."""
        service, _setup, by_start = await self.availability_by_lane(
            service_name, first, last, now=now, resource=resource
        )
        return service, [start for start, _lanes in by_start][:200]

    def _check_start(self, setup: Setup, start: datetime, now: datetime | None, *, owner: bool) -> datetime:
        start = _utc(start)
        moment = now or datetime.now(UTC)
        if start < moment:
            raise ServiceError(tr("that time has already passed"))
        earliest, latest = setup.rules.window(moment)
        if start < earliest and not owner:
            raise ServiceError(
                f"bookings need at least {setup.rules.min_notice} minutes' notice; the earliest is "
                + earliest.astimezone(setup.tz).strftime("%Y-%m-%d %H:%M")
            )
        if start > latest and not owner:
            raise ServiceError(tr("bookings can be made at most %(days)s days ahead", days=setup.rules.max_days_ahead))
        return start

    def _open_lanes(self, setup: Setup, lanes: list[Lane], slot: Interval) -> list[Lane]:
        open_lanes = [lane for lane in lanes if lane_open_for(setup, lane, slot)]
        if not open_lanes:
            day = slot.start.astimezone(setup.tz).date()
            note = setup.closure_note(day, lanes[0].resource_id if len(lanes) == 1 else None)
            if note:
                raise OutsideHours(tr("not open for the whole of that appointment: %(note)s", note=note))
            if len(lanes) == 1 and lanes[0].name:
                raise OutsideHours(tr("%(name)s is not open for the whole of that appointment", name=lanes[0].name))
            raise OutsideHours(tr("the business is not open for the whole of that appointment"))
        return open_lanes

    async def _serialise_bookings(self, s: AsyncSession) -> None:
        # The transaction's first statement is a write to the business row, so SQLite/libSQL take the
        # write lock (waiting on the busy timeout) before the overlap check reads: bookings of one
        # business run one after another, and the check sees every committed booking and synced busy time.
        await s.execute(
            update(Business)
            .where(Business.id == self.business_id)
            .values(booking_version=Business.booking_version + 1)
        )

    async def _free_lane(
        self, s: AsyncSession, lanes: list[Lane], slot: Interval, padded: Interval, exclude: UUID | None = None
    ) -> Lane:
        busy = {
            lane.key: await lane_busy(s, self.business_id, lane, padded.start - MAX_BUFFER, padded.end + MAX_BUFFER,
                                      exclude=exclude)
            for lane in lanes
        }
        lane = pick_lane(lanes, busy, slot, padded)
        if lane is None:
            if len(lanes) == 1 and lanes[0].name:
                raise SlotTaken(tr("%(name)s is already booked then", name=lanes[0].name))
            raise SlotTaken(tr("that time is already booked then"))
        return lane

    async def book(
        self,
        customer_id: UUID | NewCustomer,
        service_name: str,
        start: datetime,
        *,
        call_id: UUID | None = None,
        notes: str = "",
        now: datetime | None = None,
        resource: str | None = None,
        actor: Actor = "caller",
        caller_verified: bool = True,
    ) -> Appointment:
        setup = await self.setup()
        service = find_service(setup.business, service_name)
        lanes = self._lanes(setup, service["name"], resource)
        start = self._check_start(setup, start, now, owner=actor == "owner")
        before, after = setup.rules.buffers(service["name"])
        slot, padded = slot_for(start, int(service["minutes"]), before, after)
        lanes = self._open_lanes(setup, lanes, slot)
        if not isinstance(customer_id, NewCustomer):
            await self.get_customer(customer_id)
            number = None
        else:
            number = await self._number(customer_id.phone)  # read in the business's region
        context = await self._event_context(call_id)
        try:
            async with self._sessions() as s, s.begin():
                await self._serialise_bookings(s)
                lane = await self._free_lane(s, lanes, slot, padded)
                if isinstance(customer_id, NewCustomer):
                    customer_id = await self._customer_in(s, customer_id, number)
                appointment = Appointment(
                    business_id=self.business_id,
                    customer_id=customer_id,
                    call_id=call_id,
                    service=service["name"],
                    starts_at=slot.start,
                    ends_at=slot.end,
                    busy_from=padded.start,
                    busy_until=padded.end,
                    resource_id=lane.resource_id,
                    lane=lane.key,
                    notes=notes,
                    caller_verified=caller_verified,
                )
                s.add(appointment)
                await s.flush()
                await record_change(s, appointment, "booked", actor, writes_to_google=setup.writes_to_google,
                                    call_id=call_id, now=now, context=context)
        except IntegrityError:
            raise SlotTaken("that time is already booked") from None
        changes_committed()
        return await self.get_appointment(appointment.id)

    async def _event_context(self, call_id: UUID | None) -> EventContext | None:
        async with self._sessions() as s:
            return await event_context(s, self.business_id, call_id)

    async def _customer_in(self, s: AsyncSession, draft: NewCustomer, number: str | None) -> UUID:
        """Find or add the customer inside an open booking transaction (the write lock is already held, so no
        other booking of this business can insert the same number meanwhile). An unverified caller's booking
        changes nothing about an existing customer."""
        number = number or draft.phone
        customer = await s.scalar(
            select(Customer).where(Customer.business_id == self.business_id, Customer.phone == number)
        )
        if customer is None:
            customer = Customer(business_id=self.business_id, phone=number, name=draft.name,
                                phone_verified=draft.verified)
            s.add(customer)
        elif draft.name and draft.verified:
            customer.name = draft.name
        await s.flush()
        return customer.id

    async def get_appointment(self, appointment_id: UUID) -> Appointment:
        async with self._sessions() as s:
            appointment = await s.scalar(
                select(Appointment)
                .options(joinedload(Appointment.customer))
                .where(Appointment.business_id == self.business_id, Appointment.id == appointment_id)
            )
            if appointment is None:
                raise NotFound("appointment not found")
            return appointment

    async def upcoming_for_phone(self, phone: str, *, now: datetime | None = None) -> list[Appointment]:
        number = await self._number(phone)
        async with self._sessions() as s:
            rows = await s.scalars(
                select(Appointment)
                .join(Customer, Customer.id == Appointment.customer_id)
                .where(
                    Appointment.business_id == self.business_id,
                    Customer.phone == number,
                    Appointment.status == AppointmentStatus.BOOKED.value,
                    Appointment.starts_at >= (now or datetime.now(UTC)),
                )
                .order_by(Appointment.starts_at)
            )
            return list(rows.unique())

    async def _owned(self, s: AsyncSession, appointment_id: UUID, number: str) -> Appointment:
        appointment = await s.scalar(
            select(Appointment).where(
                Appointment.business_id == self.business_id, Appointment.id == appointment_id
            )
        )
        if appointment is None:
            raise NotFound("appointment not found")
        if appointment.customer.phone != number:
            raise NotYourAppointment("that appointment belongs to a different caller")
        if appointment.status != AppointmentStatus.BOOKED.value:
            raise ServiceError(tr("that appointment is already cancelled"))
        return appointment

    async def cancel(self, appointment_id: UUID, phone: str, *, call_id: UUID | None = None) -> Appointment:
        """Cancel for the customer who owns the appointment (identified by their phone)."""
        number = await self._number(phone)
        async with self._sessions() as s, s.begin():
            appointment = await self._owned(s, appointment_id, number)
            appointment.status = AppointmentStatus.CANCELLED.value
            await record_change(s, appointment, "cancelled", "caller", call_id=call_id)
        changes_committed()
        return appointment

    async def confirm(self, appointment_id: UUID, phone: str, *, call_id: UUID | None = None) -> Appointment:
        """Issue 16: the customer who owns the appointment (by their phone) says they will come."""
        number = await self._number(phone)
        async with self._sessions() as s, s.begin():
            appointment = await self._owned(s, appointment_id, number)
            appointment.confirmation = "confirmed"
            appointment.confirmation_at = datetime.now(UTC)
        return appointment

    async def cancel_by_owner(self, appointment_id: UUID) -> Appointment:
        async with self._sessions() as s, s.begin():
            appointment = await s.scalar(
                select(Appointment).where(
                    Appointment.business_id == self.business_id, Appointment.id == appointment_id
                )
            )
            if appointment is None:
                raise NotFound("appointment not found")
            if appointment.status == AppointmentStatus.BOOKED.value:
                appointment.status = AppointmentStatus.CANCELLED.value
                await record_change(s, appointment, "cancelled", "owner")
        changes_committed()
        return appointment

    async def reschedule(
        self, appointment_id: UUID, phone: str | None, new_start: datetime, *, now: datetime | None = None,
        resource: str | None = None, actor: Actor = "caller", call_id: UUID | None = None,
    ) -> Appointment:
        """Move a booking (the caller's own, found by phone; or any, for the owner with phone None). It keeps
        its resource unless another is named; the new time obeys the same rules as a new booking."""
        setup = await self.setup()
        number = await self._number(phone) if phone is not None else None
        context = await self._event_context(call_id)
        try:
            async with self._sessions() as s, s.begin():
                await self._serialise_bookings(s)
                if number is None:
                    appointment = await s.scalar(
                        select(Appointment).where(
                            Appointment.business_id == self.business_id, Appointment.id == appointment_id
                        )
                    )
                    if appointment is None:
                        raise NotFound("appointment not found")
                    if appointment.status != AppointmentStatus.BOOKED.value:
                        raise ServiceError(tr("that appointment is already cancelled"))
                else:
                    appointment = await self._owned(s, appointment_id, number)
                service = find_service(setup.business, appointment.service)
                wanted = resource or (setup.resource_name(appointment.resource_id) or None)
                lanes = self._lanes(setup, service["name"], wanted)
                start = self._check_start(setup, new_start, now, owner=actor == "owner")
                before, after = setup.rules.buffers(service["name"])
                slot, padded = slot_for(start, int(service["minutes"]), before, after)
                lanes = self._open_lanes(setup, lanes, slot)
                lane = await self._free_lane(s, lanes, slot, padded, exclude=appointment.id)
                appointment.starts_at, appointment.ends_at = slot.start, slot.end
                appointment.busy_from, appointment.busy_until = padded.start, padded.end
                appointment.resource_id, appointment.lane = lane.resource_id, lane.key
                await record_change(s, appointment, "moved", actor, writes_to_google=setup.writes_to_google,
                                    call_id=call_id, now=now, context=context)
        except IntegrityError:
            raise SlotTaken("that time is already booked") from None
        changes_committed()
        return await self.get_appointment(appointment_id)

    async def list_appointments(
        self, *, upcoming: bool, now: datetime | None = None, limit: int = 100
    ) -> Sequence[Appointment]:
        moment = now or datetime.now(UTC)
        condition = Appointment.starts_at >= moment if upcoming else Appointment.starts_at < moment
        async with self._sessions() as s:
            rows = await s.scalars(
                select(Appointment)
                .where(and_(Appointment.business_id == self.business_id, condition))
                .order_by(Appointment.starts_at if upcoming else Appointment.starts_at.desc())
                .limit(limit)
            )
            return list(rows.unique())

    # -- messages -----------------------------------------------------------------------------------------
    async def take_message(
        self, body: str, *, caller_name: str = "", caller_phone: str | None = None, call_id: UUID | None = None,
        urgency: str = "normal", callback_requested: bool = False,
    ) -> Message:
        """Save the message; a caller with a known number becomes (or is found as) a customer, so their
        messages, calls and bookings meet on one page. A stored name is never overwritten by a message's."""
        if not body.strip():
            raise ServiceError(tr("the message is empty"))
        if urgency not in URGENCIES:
            raise ServiceError(tr("urgency must be one of %(choices)s", choices=", ".join(URGENCIES)))
        number = await self._number(caller_phone) if caller_phone else None

        async def save(s: AsyncSession) -> Message:
            customer_id = None
            if number:
                customer = await s.scalar(
                    select(Customer).where(Customer.business_id == self.business_id, Customer.phone == number)
                )
                if customer is None and caller_name:
                    customer = Customer(business_id=self.business_id, phone=number, name=caller_name)
                    s.add(customer)
                    await s.flush()
                elif customer is not None and not customer.name and caller_name:
                    customer.name = caller_name
                customer_id = customer.id if customer is not None else None
            message = Message(
                business_id=self.business_id,
                call_id=call_id,
                customer_id=customer_id,
                caller_name=caller_name,
                caller_phone=number,
                body=body.strip(),
                urgency=urgency,
                callback_requested=callback_requested,
            )
            s.add(message)
            await s.flush()
            return message

        try:
            return await find_or_create(self._sessions, save)
        except IntegrityError:
            raise ServiceError(tr("could not save the message; try again")) from None

    # -- calls --------------------------------------------------------------------------------------------
    async def get_call(self, call_id: UUID) -> Call:
        async with self._sessions() as s:
            call = await s.scalar(select(Call).where(Call.business_id == self.business_id, Call.id == call_id))
            if call is None:
                raise NotFound("call not found")
            return call

    # -- voicemails (issue 11) ----------------------------------------------------------------------------
    async def messages_for_call(self, call_id: UUID) -> list[Message]:
        async with self._sessions() as s:
            return list(await s.scalars(select(Message).where(Message.business_id == self.business_id,
                                                              Message.call_id == call_id)
                                        .order_by(Message.created_at)))

    async def get_message(self, message_id: UUID) -> Message:
        async with self._sessions() as s:
            message = await s.scalar(select(Message).where(Message.business_id == self.business_id,
                                                           Message.id == message_id))
            if message is None:
                raise NotFound("message not found")
            return message
