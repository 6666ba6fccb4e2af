"""Appointments: upcoming and past bookings with the customer and the call that made them; owner cancel."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Redirect, Template

from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page, parse_id
from app.db.engine import Database
from app.db.models import Business
from app.db.services import BusinessScope


@get("/appointments", name="dashboard:appointments")
async def appointments_page(owner: Owner, business: Business, db: Database) -> Template:
    scope = BusinessScope(db.session_maker, business.id)
    upcoming = await scope.list_appointments(upcoming=True, limit=200)
    past = await scope.list_appointments(upcoming=False, limit=100)
    return page("dashboard/appointments.html", owner, upcoming=upcoming, past=past)


@post("/appointments/{appointment_id:str}/cancel", name="dashboard:appointment-cancel", status_code=200)
async def cancel_appointment(
    appointment_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database
) -> Template | Redirect:
    scope = BusinessScope(db.session_maker, business.id)
    await scope.cancel_by_owner(parse_id(appointment_id))  # another business's id is NotFound → 404
    appointment = await scope.get_appointment(parse_id(appointment_id))
    if is_htmx(request):
        return page("dashboard/_appointment_row.html", owner, a=appointment, upcoming=True)
    return Redirect(path="/appointments", status_code=303)


ROUTES = [appointments_page, cancel_appointment]
