"""Customers the receptionist has met: who they are, their bookings and their calls."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from app.auth.deps import Owner
from app.dashboard.common import page, parse_id
from app.db.owner_queries import OwnerScope

LIST_LIMIT = 200


@get("/customers", name="dashboard:customers")
async def customers_page(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope) -> Template:
    q = str(request.query_params.get("q") or "").strip()[:100]
    rows = await owner_scope.customers_with_calls(q, limit=LIST_LIMIT)
    return page("dashboard/customers/list.html", owner, rows=rows, q=q)


@get("/customers/{customer_id:str}", name="dashboard:customer")
async def customer_detail(customer_id: str, owner: Owner, owner_scope: OwnerScope) -> Template:
    customer = await owner_scope.get_customer(parse_id(customer_id))
    appointments, calls = await owner_scope.customer_history(customer.id, limit=100)
    return page("dashboard/customers/detail.html", owner, customer=customer, appointments=appointments, calls=calls)


ROUTES = [customers_page, customer_detail]
