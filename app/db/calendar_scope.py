"""The owner's calendar configuration and views, scoped to one business like `BusinessScope`: resources,
closures, booking rules, blocked time, connected Google calendars, conflicts, and a date range's bookings.

Every query here filters on the scope's business id; a row id from another business is `NotFound`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from app.db.hours import HoursError, validate_day_ranges, validate_weekly_hours
from app.db.models import (
    Appointment,
    BookingRules,
    BusyBlock,
    BusySource,
    CalendarAccount,
    CalendarConflict,
    CalendarLink,
    Closure,
    Customer,
    Job,
    Resource,
    ResourceKind,
)
from app.db.scheduling import CALENDAR_PUSH_JOB, block_push_key, changes_committed, record_block_change
from app.db.services import BusinessScope, NotFound, ServiceError
from app.i18n.text import message_of, tr
from app.jobs import job_id_for


@dataclass(slots=True)
class RangeView:
    appointments: list[Appointment]
    blocks: list[BusyBlock]


class CalendarScope(BusinessScope):
    def __init__(self, session_maker: async_sessionmaker[AsyncSession], business_id: UUID) -> None:
        super().__init__(session_maker, business_id)

    # -- resources --------------------------------------------------------------------------------------
    async def resources(self, *, include_inactive: bool = False) -> list[Resource]:
        async with self._sessions() as s:
            query = select(Resource).where(Resource.business_id == self.business_id)
            if not include_inactive:
                query = query.where(Resource.active.is_(True))
            return list(await s.scalars(query.order_by(Resource.position, Resource.name)))

    async def get_resource(self, resource_id: UUID) -> Resource:
        async with self._sessions() as s:
            row = await s.scalar(
                select(Resource).where(Resource.business_id == self.business_id, Resource.id == resource_id)
            )
            if row is None:
                raise NotFound("staff member or room not found")
            return row

    async def save_resource(
        self, resource_id: UUID | None, *, name: str, kind: str, services: Sequence[str],
        weekly_hours: dict[str, Any] | None, position: int = 0, active: bool = True,
    ) -> Resource:
        name = name.strip()
        if not name or len(name) > 200:
            raise ServiceError(tr("give the staff member or room a name (at most 200 characters)"))
        if kind not in {k.value for k in ResourceKind}:
            raise ServiceError(tr("kind must be person or room"))
        try:
            hours = validate_weekly_hours(weekly_hours) if weekly_hours is not None else None
        except HoursError as exc:
            raise ServiceError(message_of(exc)) from None
        business = await self.business()
        offered = {s["name"].lower(): s["name"] for s in business.services or []}
        unknown = [s for s in services if s.lower() not in offered]
        if unknown:
            raise ServiceError(tr("unknown service %(service)s; services offered: %(offered)s",
                                  service=repr(unknown[0]), offered=", ".join(offered.values())))
        try:
            async with self._sessions() as s, s.begin():
                if resource_id is None:
                    row = Resource(business_id=self.business_id, name=name)
                    s.add(row)
                else:
                    row = await s.scalar(
                        select(Resource).where(Resource.business_id == self.business_id, Resource.id == resource_id)
                    )
                    if row is None:
                        raise NotFound("staff member or room not found")
                row.name, row.kind, row.weekly_hours = name, kind, hours
                row.services = [offered[s.lower()] for s in services]
                row.position, row.active = position, active
                await s.flush()
        except IntegrityError:
            raise ServiceError(tr("there is already a staff member or room called %(name)s", name=repr(name))) from None
        return row

    # -- closures ---------------------------------------------------------------------------------------
    async def closures(self, *, since: date | None = None) -> list[Closure]:
        async with self._sessions() as s:
            query = select(Closure).where(Closure.business_id == self.business_id)
            if since is not None:
                query = query.where(Closure.day >= since)
            return list(await s.scalars(query.order_by(Closure.day)))

    async def add_closure(self, day: date, hours: Sequence[Sequence[str]], *, note: str = "",
                          resource_id: UUID | None = None) -> Closure:
        try:
            ranges = validate_day_ranges(hours)
        except HoursError as exc:
            raise ServiceError(message_of(exc)) from None
        if resource_id is not None:
            await self.get_resource(resource_id)
        async with self._sessions() as s, s.begin():
            # One exception per date and resource: a new one replaces the old.
            await s.execute(delete(Closure).where(
                Closure.business_id == self.business_id, Closure.day == day,
                Closure.resource_id.is_(None) if resource_id is None else Closure.resource_id == resource_id,
            ))
            row = Closure(business_id=self.business_id, resource_id=resource_id, day=day, hours=ranges,
                          note=note.strip()[:200])
            s.add(row)
        return row

    async def delete_closure(self, closure_id: UUID) -> None:
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                delete(Closure).where(Closure.business_id == self.business_id, Closure.id == closure_id)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("closure not found")

    # -- rules ------------------------------------------------------------------------------------------
    async def rules(self) -> BookingRules:
        async with self._sessions() as s:
            row = await s.scalar(select(BookingRules).where(BookingRules.business_id == self.business_id))
            return row or BookingRules(business_id=self.business_id, buffer_before_minutes=0,
                                       buffer_after_minutes=0, min_notice_minutes=0, max_days_ahead=90,
                                       service_buffers={})

    async def save_rules(self, *, before: int, after: int, min_notice: int, max_days_ahead: int,
                         service_buffers: dict[str, list[int]]) -> BookingRules:
        for label, value, high in ((tr("buffer before"), before, 240), (tr("buffer after"), after, 240),
                                   (tr("minimum notice"), min_notice, 60 * 24 * 30),
                                   (tr("days ahead"), max_days_ahead, 730)):
            if not 0 <= value <= high:
                raise ServiceError(tr("%(what)s must be between 0 and %(high)s", what=label, high=high))
        if max_days_ahead < 1:
            raise ServiceError(tr("days ahead must be at least 1"))
        async with self._sessions() as s, s.begin():
            row = await s.scalar(select(BookingRules).where(BookingRules.business_id == self.business_id))
            if row is None:
                row = BookingRules(business_id=self.business_id)
                s.add(row)
            row.buffer_before_minutes, row.buffer_after_minutes = before, after
            row.min_notice_minutes, row.max_days_ahead = min_notice, max_days_ahead
            row.service_buffers = service_buffers
        return row

    # -- blocked time -----------------------------------------------------------------------------------
    async def block_time(self, start: datetime, end: datetime, *, note: str = "",
                         resource_id: UUID | None = None) -> BusyBlock:
        if start.tzinfo is None or end.tzinfo is None:
            raise ServiceError(tr("times must carry a timezone"))
        if end <= start:
            raise ServiceError(tr("the end must be after the start"))
        if resource_id is not None:
            await self.get_resource(resource_id)
        async with self._sessions() as s, s.begin():
            row = BusyBlock(business_id=self.business_id, resource_id=resource_id, source=BusySource.OWNER.value,
                            starts_at=start.astimezone(UTC), ends_at=end.astimezone(UTC),
                            note=note.strip()[:200] or "Blocked")
            s.add(row)
            await s.flush()
            await record_block_change(s, row, removed=False)  # to Google Calendar, with the block's commit
        changes_committed()
        return row

    async def unblock(self, block_id: UUID) -> None:
        async with self._sessions() as s, s.begin():
            row = await s.scalar(select(BusyBlock).where(
                BusyBlock.business_id == self.business_id, BusyBlock.id == block_id,
                BusyBlock.source == BusySource.OWNER.value,
            ))
            if row is None:
                raise NotFound("blocked time not found")
            await record_block_change(s, row, removed=True)
            await s.delete(row)
        changes_committed()

    async def block_push_jobs(self, blocks: Sequence[BusyBlock]) -> dict[UUID, Job]:
        """The Google Calendar write of each of the scope's owner blocks (its keyed push job), for the state the
        owner sees: waiting, retrying and why, failed and why. A block without one has no calendar to go to."""
        mine = [b.id for b in blocks if b.business_id == self.business_id and b.source == BusySource.OWNER.value]
        if not mine:
            return {}
        ids = {job_id_for(block_push_key(block_id)): block_id for block_id in mine}
        async with self._sessions() as s:
            return {ids[j.id]: j for j in await s.scalars(select(Job).where(Job.id.in_(list(ids))))}

    async def appointment_push_job(self, appointment: Appointment) -> Job | None:
        """The latest Google Calendar write queued for one of the scope's appointments."""
        if appointment.business_id != self.business_id:
            return None
        async with self._sessions() as s:
            return await s.scalar(
                select(Job).where(Job.kind == CALENDAR_PUSH_JOB,
                                  Job.payload["appointment_id"].as_string() == str(appointment.id))
                .order_by(Job.created_at.desc()).limit(1)
            )

    # -- the calendar view ------------------------------------------------------------------------------
    async def range_view(self, start: datetime, end: datetime) -> RangeView:
        async with self._sessions() as s:
            appointments = list((await s.scalars(
                select(Appointment).options(joinedload(Appointment.customer)).where(
                    Appointment.business_id == self.business_id,
                    Appointment.starts_at < end, Appointment.ends_at > start,
                ).order_by(Appointment.starts_at)
            )).unique())
            blocks = list(await s.scalars(
                select(BusyBlock).where(
                    BusyBlock.business_id == self.business_id,
                    BusyBlock.starts_at < end, BusyBlock.ends_at > start,
                ).order_by(BusyBlock.starts_at)
            ))
        return RangeView(appointments, blocks)

    async def open_conflicts(self) -> list[tuple[CalendarConflict, Appointment]]:
        async with self._sessions() as s:
            rows = await s.execute(
                select(CalendarConflict, Appointment)
                .join(Appointment, Appointment.id == CalendarConflict.appointment_id)
                .options(joinedload(Appointment.customer))
                .where(CalendarConflict.business_id == self.business_id, CalendarConflict.resolved_at.is_(None))
                .order_by(Appointment.starts_at)
            )
            return [(c, a) for c, a in rows.unique().tuples()]

    async def resolve_conflict(self, conflict_id: UUID) -> None:
        async with self._sessions() as s, s.begin():
            result = await s.execute(
                update(CalendarConflict)
                .where(CalendarConflict.business_id == self.business_id, CalendarConflict.id == conflict_id)
                .values(resolved_at=datetime.now(UTC))
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("conflict not found")

    # -- customers (owner-managed) ----------------------------------------------------------------------
    async def create_or_update_customer(self, customer_id: UUID | None, *, name: str, phone: str,
                                        email: str, notes: str) -> Customer:
        number = await self._number(phone)  # read in the business's region, like every number it stores
        if len(name) > 200 or len(email) > 320:
            raise ServiceError(tr("name or email is too long"))
        if email and "@" not in email:
            raise ServiceError(tr("that email address has no @"))
        try:
            async with self._sessions() as s, s.begin():
                if customer_id is None:
                    row = Customer(business_id=self.business_id, phone=number)
                    s.add(row)
                else:
                    row = await s.scalar(select(Customer).where(
                        Customer.business_id == self.business_id, Customer.id == customer_id))
                    if row is None:
                        raise NotFound("customer not found")
                row.name, row.phone, row.email, row.notes = name.strip(), number, email.strip() or None, notes
                await s.flush()
        except IntegrityError:
            raise ServiceError(tr("another customer already has that phone number")) from None
        return row

    async def customers_for_select(self, limit: int = 500) -> list[Customer]:
        async with self._sessions() as s:
            return list(await s.scalars(
                select(Customer).where(Customer.business_id == self.business_id)
                .order_by(Customer.name, Customer.phone).limit(limit)
            ))

    # -- Google Calendar --------------------------------------------------------------------------------
    async def calendar_accounts(self) -> list[tuple[CalendarAccount, list[CalendarLink]]]:
        async with self._sessions() as s:
            accounts = list(await s.scalars(
                select(CalendarAccount).where(CalendarAccount.business_id == self.business_id)
                .order_by(CalendarAccount.created_at)
            ))
            links = list(await s.scalars(
                select(CalendarLink).where(CalendarLink.business_id == self.business_id)
                .order_by(CalendarLink.created_at)
            ))
        return [(a, [link for link in links if link.account_id == a.id]) for a in accounts]

    async def calendar_account(self, account_id: UUID) -> CalendarAccount:
        async with self._sessions() as s:
            row = await s.scalar(select(CalendarAccount).where(
                CalendarAccount.business_id == self.business_id, CalendarAccount.id == account_id))
            if row is None:
                raise NotFound("calendar account not found")
            return row

    async def calendar_link(self, link_id: UUID) -> CalendarLink:
        async with self._sessions() as s:
            row = await s.scalar(select(CalendarLink).where(
                CalendarLink.business_id == self.business_id, CalendarLink.id == link_id))
            if row is None:
                raise NotFound("calendar not found")
            return row

    async def save_calendar_account(self, email: str, refresh_token_encrypted: str, scopes: str) -> CalendarAccount:
        async def save(s: AsyncSession) -> CalendarAccount:
            row = await s.scalar(select(CalendarAccount).where(
                CalendarAccount.business_id == self.business_id, CalendarAccount.email == email))
            if row is None:
                row = CalendarAccount(business_id=self.business_id, email=email,
                                      refresh_token_encrypted=refresh_token_encrypted)
                s.add(row)
            row.refresh_token_encrypted, row.scopes, row.last_error = refresh_token_encrypted, scopes, None
            await s.flush()
            return row

        from app.db.engine import find_or_create

        return await find_or_create(self._sessions, save)

    async def add_calendar_link(self, account_id: UUID, google_id: str, summary: str, access_role: str,
                                resource_id: UUID | None) -> CalendarLink:
        await self.calendar_account(account_id)
        if resource_id is not None:
            await self.get_resource(resource_id)
        writable = access_role in {"owner", "writer"}
        try:
            async with self._sessions() as s, s.begin():
                row = CalendarLink(business_id=self.business_id, account_id=account_id, google_id=google_id,
                                   summary=summary[:300], access_role=access_role, resource_id=resource_id,
                                   write_bookings=writable)
                s.add(row)
        except IntegrityError:
            raise ServiceError(tr("that calendar is already connected")) from None
        return row

    async def update_calendar_link(self, link_id: UUID, *, resource_id: UUID | None, write_bookings: bool) -> None:
        link = await self.calendar_link(link_id)
        if resource_id is not None:
            await self.get_resource(resource_id)
        if write_bookings and link.access_role not in {"owner", "writer"}:
            raise ServiceError(tr("bookings can only be written to a calendar you can edit"))
        async with self._sessions() as s, s.begin():
            await s.execute(update(CalendarLink).where(CalendarLink.id == link.id)
                            .values(resource_id=resource_id, write_bookings=write_bookings))
            await s.execute(update(BusyBlock).where(BusyBlock.link_id == link.id).values(resource_id=resource_id))

    async def delete_calendar_account(self, account_id: UUID) -> None:
        async with self._sessions() as s, s.begin():
            await s.execute(delete(CalendarAccount).where(
                CalendarAccount.business_id == self.business_id, CalendarAccount.id == account_id))
