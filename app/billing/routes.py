"""Billing routes: Upgrade (Polar checkout), Manage billing (Polar customer portal), the Polar webhook, and the
owner's "mark as spam" on a call. Card data never reaches the service: both pages are Polar's.

`POST /billing/polar/webhook` is public by design (its own Standard Webhooks signature check, CSRF-exempt);
every other route here is an owner route scoped to the owner's business.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Litestar, Request, Response, post
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from app import audit
from app.auth.deps import Owner
from app.billing.metering import BillingJobs, mark_call_spam
from app.billing.plans import plan_by_key
from app.billing.polar import PolarGateway, PolarRefused, PolarUnavailable, get_polar, load_sdk
from app.billing.usage import BillingScope
from app.billing.webhooks import handle
from app.dashboard.common import parse_id
from app.db.engine import Database
from app.db.models import Business
from app.db.services import BusinessScope
from app.settings import Settings

log = logging.getLogger(__name__)


def _billing(error: str | None = None) -> Redirect:
    return Redirect(path=f"/billing?error={error}" if error else "/billing", status_code=303)


@post("/billing/checkout", name="billing:checkout", status_code=303)
async def checkout(request: Request[Any, Any, Any], owner: Owner, business: Business, settings: Settings,
                   db: Database) -> Redirect:
    form = await request.form()
    plan = plan_by_key(settings.polar_plans, str(form.get("plan") or ""))
    if plan is None or plan.product_id is None:
        return _billing("unknown-plan")
    try:
        url = await get_polar(request.app).create_checkout(
            product_id=plan.product_id,
            external_customer_id=str(owner.user.id),
            success_url=f"{settings.public_base_url}/billing?checkout_id={{CHECKOUT_ID}}",
            metadata={"business_id": str(business.id), "plan": plan.key},
        )
    except (PolarUnavailable, PolarRefused) as exc:
        log.warning("checkout for business %s failed: %s", business.id, exc)
        return _billing("checkout")
    await audit.record(db, "billing.changed", business_id=business.id, user=owner.user, request=request,
                       detail={"checkout": plan.key})
    return Redirect(path=url, status_code=303)


@post("/billing/portal", name="billing:portal", status_code=303)
async def portal(request: Request[Any, Any, Any], owner: Owner, business: Business, settings: Settings,
                 db: Database) -> Redirect:
    try:
        url = await get_polar(request.app).portal_url(external_customer_id=str(owner.user.id),
                                                     return_url=f"{settings.public_base_url}/billing")
    except (PolarUnavailable, PolarRefused) as exc:
        log.warning("customer portal for business %s failed: %s", business.id, exc)
        return _billing("portal")
    await audit.record(db, "billing.changed", business_id=business.id, user=owner.user, request=request,
                       detail={"portal": "opened"})
    return Redirect(path=url, status_code=303)


@post("/billing/polar/webhook", name="billing:polar-webhook", status_code=200)
async def polar_webhook(request: Request[Any, Any, Any], settings: Settings, db: Database) -> Response[dict[str, str]]:
    body = await request.body()
    result = await handle(db, settings, body, dict(request.headers))
    return Response(content={"outcome": result.outcome}, status_code=result.status_code)


@post("/calls/{call_id:str}/spam", name="billing:call-spam", status_code=303)
async def mark_spam(call_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                    db: Database, settings: Settings) -> Redirect:
    """The owner says this call was spam: it stops counting against the plan (and is credited on Polar)."""
    call = await BusinessScope(db.session_maker, business.id).get_call(parse_id(call_id))  # 404 if not theirs
    await mark_call_spam(BillingScope(db.session_maker, business.id, settings), call.id)
    jobs = request.app.state.get("jobs")
    if jobs is not None:
        jobs.poke()
    return Redirect(path=f"/calls/{call.id}", status_code=303)


async def start_billing(app: Litestar) -> None:
    """Register the billing job kinds on the process's job queue (started by the call runtime); load polar-sdk
    (when Polar is configured) off the loop. (The price table is loaded with the rest of start-up's warm-up, in
    app.main, before the heap is frozen.)"""
    settings: Settings = app.state.settings
    if settings.polar_access_token or settings.polar_webhook_secret:
        await asyncio.to_thread(load_sdk)
    gateway = get_polar(app)
    BillingJobs(app.state.db, app.state.settings, gateway).register(app.state.jobs)


async def stop_billing(app: Litestar) -> None:
    gateway: PolarGateway | None = app.state.get("polar")
    if gateway is not None:
        await gateway.close()


ROUTES: list[ControllerRouterHandler] = [checkout, portal, polar_webhook, mark_spam]
