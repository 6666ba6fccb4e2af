"""Availability, booking, and the caller's own appointments (find, cancel, reschedule).

Finding, cancelling and rescheduling act only for the number the line vouches for. Booking works for anyone:
without a vouched number it books under the number the caller gives, marked unverified, and changes nothing
stored about whoever that number belongs to. What comes back about an appointment is only what the caller
needs to hear: the service, its times and its id (to cancel or move it) - never notes or another person's
name."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from uuid import UUID

from app.db.models import Appointment
from app.db.services import NewCustomer
from app.tools.base import PHONE_PARAM, Tool, ToolContext, ToolError, text_arg, uuid_arg

MAX_SLOTS_RETURNED = 24


def appointment_view(ctx: ToolContext, appointment: Appointment, with_: str = "") -> dict[str, Any]:
    view = {
        "appointment_id": str(appointment.id),
        "service": appointment.service,
        "start": ctx.iso(appointment.starts_at),
        "end": ctx.iso(appointment.ends_at),
        "when": ctx.spoken(appointment.starts_at),  # issue 16: worded in the call's language
        "status": appointment.status,
    }
    if with_:
        view["with"] = with_  # issue 15: the staff member or room that takes it
    return view


async def _with(ctx: ToolContext, appointment: Appointment) -> str:
    if appointment.resource_id is None:
        return ""
    return (await ctx.scope.setup()).resource_name(appointment.resource_id)


async def check_availability(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    first = ctx.local_date(args.get("date"))
    last = ctx.local_date(args["end_date"], "end_date") if args.get("end_date") else first
    staff = text_arg(args, "staff", required=False) or None
    service, setup, by_start = await ctx.scope.availability_by_lane(
        text_arg(args, "service"), first, last, now=ctx.now(), resource=staff, limit=MAX_SLOTS_RETURNED + 1
    )
    slots = [start for start, _lanes in by_start]
    result: dict[str, Any] = {
        "service": service["name"],
        "minutes": service["minutes"],
        "from": first.isoformat(),
        "to": last.isoformat(),
        "free_starts": [ctx.iso(s) for s in slots[:MAX_SLOTS_RETURNED]],
        # issue 16: the same starts worded in the call's language, as the receptionist should say them
        "free_starts_spoken": [ctx.spoken(s) for s in slots[:MAX_SLOTS_RETURNED]],
        "more_available": len(slots) > MAX_SLOTS_RETURNED,
    }
    # Issue 15: who is free at each start, closures on the dates asked about, and the booking window.
    if setup.resources:
        result["staff_free"] = {ctx.iso(s): [lane.name for lane in lanes] for s, lanes in by_start[:MAX_SLOTS_RETURNED]}
    day, notes = first, []
    while day <= last and len(notes) < 10:
        note = setup.closure_note(day)
        if note:
            notes.append(note)
        day += timedelta(days=1)
    if notes:
        result["closures"] = notes
    earliest, latest = setup.rules.window(ctx.now())
    if setup.rules.min_notice:
        result["earliest_bookable"] = ctx.iso(earliest)
    if latest.astimezone(ctx.tz).date() < last:
        result["latest_bookable"] = ctx.iso(latest)
    return result


async def book_appointment(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.phone_for(args.get("customer_phone"))
    start = ctx.local_datetime(args.get("start"))
    name = text_arg(args, "customer_name", required=False)
    existing = await ctx.scope.customer_by_phone(phone)
    if ctx.verified:
        if existing is None and not name:
            raise ToolError("customer_name is required for a new customer; ask the caller for their name")
        # A new customer (or a new name) is saved by the booking itself, only once every check has passed.
        customer: UUID | NewCustomer = existing.id if existing and not name else NewCustomer(phone, name or "")
    else:
        # Asked the same way whoever the number belongs to, so the answer never tells whether it is a customer;
        # an existing customer is booked as is (an unverified caller renames nobody).
        if not name:
            raise ToolError("customer_name is required; ask the caller for their name")
        customer = existing.id if existing else NewCustomer(phone, name, verified=False)
    appointment = await ctx.scope.book(
        customer,
        text_arg(args, "service"),
        start,
        call_id=ctx.call_id,
        notes=text_arg(args, "notes", required=False),
        now=ctx.now(),
        resource=text_arg(args, "staff", required=False) or None,
        caller_verified=ctx.verified,
    )
    result: dict[str, Any] = {"booked": True,
                              "appointment": appointment_view(ctx, appointment, await _with(ctx, appointment))}
    if not ctx.verified:
        result["note"] = ("Booked under the number the caller gave. Without caller ID they can't change or cancel "
                          "it by phone later; the business can.")
    return result


async def find_appointments(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.vouched_phone()
    rows = await ctx.scope.upcoming_for_phone(phone, now=ctx.now())
    return {"appointments": [appointment_view(ctx, a) for a in rows]}


async def cancel_appointment(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.vouched_phone()
    appointment = await ctx.scope.cancel(uuid_arg(args, "appointment_id"), phone, call_id=ctx.call_id)
    return {"cancelled": True, "appointment_id": str(appointment.id)}


async def reschedule_appointment(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.vouched_phone()
    appointment = await ctx.scope.reschedule(
        uuid_arg(args, "appointment_id"), phone, ctx.local_datetime(args.get("new_start"), "new_start"),
        now=ctx.now(), resource=text_arg(args, "staff", required=False) or None, call_id=ctx.call_id,
    )
    return {"rescheduled": True, "appointment": appointment_view(ctx, appointment, await _with(ctx, appointment))}


_LOCAL_TIME = "Local date-time in the business's timezone, ISO 8601, e.g. 2026-05-04T10:00"
_STAFF = {"type": "string", "description": "Optional: the staff member or room the caller asked for (\"with Maria\"); "
          "leave out to take whoever is free first."}

CHECK_AVAILABILITY = Tool(
    name="check_availability",
    description="Free start times for a service on a local date (or a date range up to 31 days).",
    parameters={
        "type": "object",
        "properties": {
            "service": {"type": "string", "description": "Service name as listed by get_business_info."},
            "date": {"type": "string", "description": "Local date, YYYY-MM-DD."},
            "end_date": {"type": "string", "description": "Optional last local date, YYYY-MM-DD."},
            "staff": _STAFF,
        },
        "required": ["service", "date"],
        "additionalProperties": False,
    },
    fn=check_availability,
)

BOOK_APPOINTMENT = Tool(
    name="book_appointment",
    description="Book a service at a free start time for the caller. Only book a time the caller agreed to.",
    parameters={
        "type": "object",
        "properties": {
            "service": {"type": "string"},
            "start": {"type": "string", "description": _LOCAL_TIME},
            "customer_name": {"type": "string", "description": "Needed for a new customer."},
            "customer_phone": PHONE_PARAM,
            "notes": {"type": "string"},
            "staff": _STAFF,
        },
        "required": ["service", "start"],
        "additionalProperties": False,
    },
    fn=book_appointment,
)

_OWN = " Only for the number the line shows (caller ID); refuses when the caller's number is withheld."

FIND_APPOINTMENTS = Tool(
    name="find_appointments",
    description="The caller's own upcoming appointments." + _OWN,
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    fn=find_appointments,
)

CANCEL_APPOINTMENT = Tool(
    name="cancel_appointment",
    description="Cancel one of the caller's own appointments (appointment_id from find_appointments)." + _OWN,
    parameters={
        "type": "object",
        "properties": {"appointment_id": {"type": "string"}},
        "required": ["appointment_id"],
        "additionalProperties": False,
    },
    fn=cancel_appointment,
)

RESCHEDULE_APPOINTMENT = Tool(
    name="reschedule_appointment",
    description="Move one of the caller's own appointments to a new free start time." + _OWN,
    parameters={
        "type": "object",
        "properties": {
            "appointment_id": {"type": "string"},
            "new_start": {"type": "string", "description": _LOCAL_TIME},
            "staff": _STAFF,
        },
        "required": ["appointment_id", "new_start"],
        "additionalProperties": False,
    },
    fn=reschedule_appointment,
)
