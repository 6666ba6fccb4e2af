"""Customers the receptionist has met: who they are, their bookings and their calls."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template
from sqlalchemy import func, or_, select

from app.auth.deps import Owner
from app.dashboard.call_queries import like_escape
from app.dashboard.common import page, parse_id
from app.db.engine import Database
from app.db.inbox import InboxScope
from app.db.models import Appointment, Business, Call, Customer
from app.db.services import BusinessScope

LIST_LIMIT = 200


@get("/customers", name="dashboard:customers")
async def customers_page(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database) -> Template:
    q = str(request.query_params.get("q") or "").strip()[:100]
    calls = (
        select(Call.customer_id, func.count(Call.id).label("calls"), func.max(Call.started_at).label("last_call"))
        .where(Call.business_id == business.id, Call.customer_id.is_not(None))
        .group_by(Call.customer_id)
        .subquery()
    )
    query = (
        select(Customer, calls.c.calls, calls.c.last_call)
        .outerjoin(calls, calls.c.customer_id == Customer.id)
        .where(Customer.business_id == business.id)
    )
    if q:
        pattern = f"%{like_escape(q)}%"
        query = query.where(or_(Customer.name.ilike(pattern, escape="\\"), Customer.phone.like(pattern, escape="\\")))
    async with db.session() as s:
        rows = list((await s.execute(query.order_by(Customer.name, Customer.phone).limit(LIST_LIMIT))).tuples())
    return page("dashboard/customers/list.html", owner, rows=rows, q=q)


@get("/customers/{customer_id:str}", name="dashboard:customer")
async def customer_detail(customer_id: str, owner: Owner, business: Business, db: Database) -> Template:
    customer = await BusinessScope(db.session_maker, business.id).get_customer(parse_id(customer_id))
    async with db.session() as s:
        appointments = list(
            (
                await s.scalars(
                    select(Appointment)
                    .where(Appointment.business_id == business.id, Appointment.customer_id == customer.id)
                    .order_by(Appointment.starts_at.desc())
                    .limit(100)
                )
            ).unique()
        )
        calls = list(
            await s.scalars(
                select(Call)
                .where(Call.business_id == business.id, Call.customer_id == customer.id)
                .order_by(Call.started_at.desc())
                .limit(100)
            )
        )
    messages = await InboxScope(db.session_maker, business.id).messages(state="all", customer_id=customer.id)
    return page("dashboard/customers/detail.html", owner, customer=customer, appointments=appointments, calls=calls,
                messages=messages)


ROUTES = [customers_page, customer_detail]
