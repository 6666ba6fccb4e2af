"""Who can be booked when: resources (lanes), closures, buffers and booking rules, and the busy times that
block a lane (its bookings, the owner's blocks, busy times synced from Google Calendar).

Invariants:
- A lane is one resource (its id as text) or "" for a business without resources. A booking holds its lane
  from `busy_from` to `busy_until` (its time widened by the service's buffers); two live bookings of one
  lane never overlap, because every booking write of a business is serialised (see `BusinessScope`) and
  checks its lane here inside that same transaction, against the last synced Google busy times too.
- The same rules (opening with closures, buffers, minimum notice, how far ahead) decide what the receptionist
  offers, what it can book, and what the owner's calendar offers.
- Every booking change passes through `record_change` inside its transaction: that is the one hook where
  durable follow-up work (the Google Calendar write, the caller's notification) is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.hours import DayExceptions, Interval, WeeklyHours, intersect, opening_intervals, zone
from app.db.models import (
    Appointment,
    AppointmentStatus,
    BookingRules,
    Business,
    BusyBlock,
    CalendarLink,
    Closure,
    Resource,
)
from app.i18n.text import tr
from app.inbox.outbox import EventContext, appointment_event
from app.jobs import enqueue

log = logging.getLogger(__name__)

CALENDAR_PUSH_JOB = "calendar.push"
Change = Literal["booked", "moved", "cancelled"]
Actor = Literal["caller", "owner"]
#: the inbox's name for each change (its notification keys and texts say "rescheduled")
_NOTIFIED_AS: dict[str, str] = {"booked": "booked", "moved": "rescheduled", "cancelled": "cancelled"}


@dataclass(frozen=True, slots=True)
class Rules:
    before: int = 0
    after: int = 0
    min_notice: int = 0
    max_days_ahead: int = 90
    service_buffers: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, row: BookingRules | None) -> Rules:
        if row is None:
            return cls()
        return cls(row.buffer_before_minutes, row.buffer_after_minutes, row.min_notice_minutes, row.max_days_ahead,
                   dict(row.service_buffers or {}))

    def buffers(self, service_name: str) -> tuple[timedelta, timedelta]:
        for name, pair in self.service_buffers.items():
            if name.lower() == service_name.lower() and len(pair) == 2:
                return timedelta(minutes=int(pair[0])), timedelta(minutes=int(pair[1]))
        return timedelta(minutes=self.before), timedelta(minutes=self.after)

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The earliest and latest start a booking may have, seen at `now`."""
        return now + timedelta(minutes=self.min_notice), now + timedelta(days=self.max_days_ahead)


@dataclass(frozen=True, slots=True)
class Lane:
    key: str
    resource_id: UUID | None
    name: str
    weekly_hours: WeeklyHours


@dataclass(slots=True)
class Setup:
    """Everything a booking decision reads besides the busy times: one business's calendar configuration."""

    business: Business
    resources: list[Resource]
    closures: list[Closure]
    rules: Rules
    writes_to_google: bool = False  # a connected calendar receives bookings

    @property
    def tz(self) -> Any:
        return zone(self.business.timezone)

    def exceptions(self, resource_id: UUID | None) -> DayExceptions:
        return {c.day: c.hours for c in self.closures if c.resource_id == resource_id}

    def closure_note(self, day: date, resource_id: UUID | None = None) -> str | None:
        """'closed on Thursday 24 December (Christmas Eve)' or 'open 10:00-14:00 on …' for a date with an
        exception, business-wide first."""
        for rid in (None, resource_id) if resource_id else (None,):
            for c in self.closures:
                if c.day == day and c.resource_id == rid:
                    when = day.strftime("%A %d %B %Y")
                    who = "" if rid is None else f" ({self.resource_name(rid)})"
                    note = f" ({c.note})" if c.note else ""
                    if not c.hours:
                        return f"closed on {when}{who}{note}"
                    return f"open {', '.join(f'{o}-{e}' for o, e in c.hours)} on {when}{who}{note}"
        return None

    def resource_name(self, resource_id: UUID | None) -> str:
        return next((r.name for r in self.resources if r.id == resource_id), "")


class LaneError(ValueError):
    """No resource matches the request; the message lists who does the service."""


async def load_setup(s: AsyncSession, business: Business, *, closures_from: date | None = None) -> Setup:
    resources = list(
        await s.scalars(
            select(Resource)
            .where(Resource.business_id == business.id, Resource.active.is_(True))
            .order_by(Resource.position, Resource.name)
        )
    )
    query = select(Closure).where(Closure.business_id == business.id)
    if closures_from is not None:
        query = query.where(Closure.day >= closures_from - timedelta(days=1))
    closures = list(await s.scalars(query.order_by(Closure.day)))
    rules = await s.scalar(select(BookingRules).where(BookingRules.business_id == business.id))
    writes = await s.scalar(
        select(func.count(CalendarLink.id)).where(
            CalendarLink.business_id == business.id, CalendarLink.write_bookings.is_(True)
        )
    )
    return Setup(business, resources, closures, Rules.of(rules), bool(writes))


def _matches(name: str, wanted: str) -> bool:
    name, wanted = name.strip().lower(), wanted.strip().lower()
    return name == wanted or name.split()[0] == wanted.split()[0] if name and wanted else False


def lanes_for(setup: Setup, service_name: str, wanted: str | None = None) -> list[Lane]:
    """The lanes that can do a service, in the business's order; one named resource when `wanted`."""
    if not setup.resources:
        if wanted:
            raise LaneError(tr("%(business)s has no staff or rooms to choose from; book without a name",
                               business=setup.business.name))
        return [Lane("", None, "", setup.business.weekly_hours or {})]
    able = [
        r for r in setup.resources
        if not r.services or any(s.lower() == service_name.lower() for s in r.services)
    ]
    if not able:
        raise LaneError(tr("no one currently does %(service)s", service=service_name))
    if wanted:
        chosen = [r for r in able if r.name.lower() == wanted.strip().lower()] or [
            r for r in able if _matches(r.name, wanted)
        ]
        if not chosen:
            if any(_matches(r.name, wanted) for r in setup.resources):
                raise LaneError(tr("%(name)s does not do %(service)s; it can be done by %(able)s", name=wanted,
                                   service=service_name, able=", ".join(r.name for r in able)))
            raise LaneError(tr("no one called %(name)s; %(service)s is done by %(able)s", name=repr(wanted),
                               service=service_name, able=", ".join(r.name for r in able)))
        able = chosen[:1]
    return [
        Lane(str(r.id), r.id, r.name, r.weekly_hours if r.weekly_hours is not None else setup.business.weekly_hours)
        for r in able
    ]


def lane_opening(setup: Setup, lane: Lane, first: date, last: date) -> list[Interval]:
    tz = setup.tz
    business = opening_intervals(setup.business.weekly_hours or {}, tz, first, last, setup.exceptions(None))
    if lane.resource_id is None:
        return business
    own = opening_intervals(lane.weekly_hours or {}, tz, first, last, setup.exceptions(lane.resource_id))
    return intersect(business, own)


def lane_open_for(setup: Setup, lane: Lane, slot: Interval) -> bool:
    tz = setup.tz
    first, last = slot.start.astimezone(tz).date(), slot.end.astimezone(tz).date()
    return any(i.contains(slot) for i in lane_opening(setup, lane, first, last))


@dataclass(slots=True)
class Busy:
    actual: list[Interval]  # bookings' own times and blocks
    padded: list[Interval]  # bookings widened by their buffers

    def clear(self, slot: Interval, padded: Interval) -> bool:
        return not any(padded.overlaps(b) for b in self.actual) and not any(slot.overlaps(b) for b in self.padded)


async def lane_busy(
    s: AsyncSession, business_id: UUID, lane: Lane, start: datetime, end: datetime, *, exclude: UUID | None = None
) -> Busy:
    busy_from = func.coalesce(Appointment.busy_from, Appointment.starts_at)
    busy_until = func.coalesce(Appointment.busy_until, Appointment.ends_at)
    query = select(Appointment).where(
        Appointment.business_id == business_id,
        Appointment.lane == lane.key,
        Appointment.status == AppointmentStatus.BOOKED.value,
        busy_from < end,
        busy_until > start,
    )
    if exclude is not None:
        query = query.where(Appointment.id != exclude)
    appointments = list((await s.scalars(query)).unique())
    blocks = list(
        await s.scalars(
            select(BusyBlock).where(
                BusyBlock.business_id == business_id,
                or_(BusyBlock.resource_id.is_(None), BusyBlock.resource_id == lane.resource_id),
                BusyBlock.starts_at < end,
                BusyBlock.ends_at > start,
            )
        )
    )
    actual = [Interval(a.starts_at, a.ends_at) for a in appointments] + [
        Interval(b.starts_at, b.ends_at) for b in blocks
    ]
    padded = [Interval(a.busy_from or a.starts_at, a.busy_until or a.ends_at) for a in appointments]
    return Busy(actual, padded)


# -- the one hook every booking change passes through -----------------------------------------------------
_listeners: list[Callable[[], None]] = []


def on_committed_change(callback: Callable[[], None]) -> None:
    """Run `callback` (cheap, sync) after a booking change commits: the job queue wakes on it."""
    _listeners.append(callback)


def forget_committed_change(callback: Callable[[], None]) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


def changes_committed() -> None:
    for callback in list(_listeners):
        try:
            callback()
        except Exception:
            log.exception("booking-change listener failed")


async def record_change(
    s: AsyncSession, appointment: Appointment, change: Change, actor: Actor, *, writes_to_google: bool | None = None,
    call_id: UUID | None = None, now: datetime | None = None, context: EventContext | None = None,
) -> None:
    """Queue, in the booking's own transaction, what must follow a booking change: the Google Calendar
    event write (insert, patch or delete) when the business has a calendar to write to, and issue 9's
    notifications (the owner told unless they made the change, the caller's confirmation and reminder), so
    they commit or roll back with the booking itself, whoever made it (a caller's tool or the owner's
    calendar). `context` is what the notifications read about the business, read before the booking lock."""
    if writes_to_google is None:  # not known from the booking's setup: one look-up
        writes_to_google = bool(await s.scalar(
            select(func.count(CalendarLink.id)).where(
                CalendarLink.business_id == appointment.business_id, CalendarLink.write_bookings.is_(True)
            )
        ))
    if writes_to_google or appointment.google_event_id:
        # Unkeyed: every change gets its own push, which makes the event match the appointment as it is then.
        await enqueue(s, CALENDAR_PUSH_JOB, {"appointment_id": str(appointment.id), "change": change, "actor": actor})
    await appointment_event(s, appointment, _NOTIFIED_AS[change], call_id=call_id, by_owner=actor == "owner",
                            now=now, context=context)


def block_push_key(block_id: UUID, *, removed: bool = False) -> str:
    """The keyed `calendar.push` job of an owner's block (one to write it, one to take it out): keyed so the
    owner's pages can find its state, and so a repeated request can't queue it twice."""
    return f"{CALENDAR_PUSH_JOB}:block:{block_id}{':removed' if removed else ''}"


async def writes_to_google(s: AsyncSession, business_id: UUID) -> bool:
    return bool(await s.scalar(
        select(func.count(CalendarLink.id)).where(
            CalendarLink.business_id == business_id, CalendarLink.write_bookings.is_(True))
    ))


async def record_block_change(s: AsyncSession, block: BusyBlock, *, removed: bool) -> None:
    """In the transaction that adds or deletes an owner's block: queue its Google Calendar write (the event
    inserted, or deleted from the calendar it went to) when the business has a calendar to write to, or the
    block is already in one. A removal carries what the push needs, since the row is gone by then."""
    if not block.google_event_id and not await writes_to_google(s, block.business_id):
        return
    payload: dict[str, Any] = {"block_id": str(block.id), "removed": removed}
    if removed:
        payload.update(business_id=str(block.business_id),
                       link_id=str(block.google_link_id) if block.google_link_id else None,
                       resource_id=str(block.resource_id) if block.resource_id else None,
                       event_id=block.google_event_id)
    await enqueue(s, CALENDAR_PUSH_JOB, payload, key=block_push_key(block.id, removed=removed))


def slot_for(start: datetime, minutes: int, before: timedelta, after: timedelta) -> tuple[Interval, Interval]:
    slot = Interval(start, start + timedelta(minutes=minutes))
    return slot, Interval(slot.start - before, slot.end + after)


def pick_lane(lanes: Sequence[Lane], busy: dict[str, Busy], slot: Interval, padded: Interval) -> Lane | None:
    return next((lane for lane in lanes if busy[lane.key].clear(slot, padded)), None)
