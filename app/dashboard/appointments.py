"""Appointments: upcoming and past bookings with the customer and the call that made them; owner cancel."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page, parse_id
from app.db.engine import Database
from app.db.owner_queries import OwnerScope


@get("/appointments", name="dashboard:appointments")
async def appointments_page(owner: Owner, owner_scope: OwnerScope) -> Template:
    upcoming = await owner_scope.list_appointments(upcoming=True, limit=200)
    past = await owner_scope.list_appointments(upcoming=False, limit=100)
    # Each row's texts to the caller (confirmation, reminder) with their delivery state, and reminders to come.
    shown = [*upcoming, *past]
    texts = await owner_scope.inbox.notifications_for_appointments([a.id for a in shown])
    reminders = await owner_scope.inbox.scheduled_reminders(upcoming)
    return page("dashboard/appointments.html", owner, upcoming=upcoming, past=past, caller_texts=texts,
                reminders_due=reminders)


@post("/appointments/{appointment_id:str}/cancel", name="dashboard:appointment-cancel", status_code=200)
async def cancel_appointment(
    appointment_id: str, request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope, db: Database
) -> Template | Redirect:
    await owner_scope.cancel_by_owner(parse_id(appointment_id))  # another business's id is NotFound → 404
    appointment = await owner_scope.get_appointment(parse_id(appointment_id))
    await audit.record(db, "appointment.cancelled", business_id=owner_scope.business_id, user=owner.user,
                       request=request, detail={"appointment": appointment.id, "service": appointment.service,
                                                "starts_at": appointment.starts_at})
    if is_htmx(request):
        texts = await owner_scope.inbox.notifications_for_appointments([appointment.id])
        return page("dashboard/_appointment_row.html", owner, a=appointment, upcoming=True, caller_texts=texts,
                    reminders_due={})
    return Redirect(path="/appointments", status_code=303)


ROUTES = [appointments_page, cancel_appointment]
