"""Onboarding (first sign-in creates the business) and Settings (edits it): one form, inline htmx errors.

Validation errors come back as 200 with the form re-rendered (htmx swaps only 2xx responses), each error
beside its field and everything typed kept. A phone number another business already uses is a field error.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page
from app.dashboard.forms import COMMON_TIMEZONES, VOICES, BusinessForm, form_from_business, parse_business_form
from app.db.engine import Database
from app.db.hours import WEEKDAY_NAMES, WEEKDAYS
from app.db.models import Business
from app.settings import Settings

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
PHONE_TAKEN = "Another business already uses this number. Check it, or contact support if it is yours."


def _form_page(
    request: Request[Any, Any, Any], owner: Owner, settings: Settings, form: BusinessForm, *, mode: str,
    saved: bool = False,
) -> Template:
    context = {
        "form": form, "mode": mode, "saved": saved, "voices": VOICES, "timezones": COMMON_TIMEZONES,
        "weekdays": [(d, WEEKDAY_NAMES[d]) for d in WEEKDAYS], "twilio_configured": settings.twilio_configured,
        "public_base_url": settings.public_base_url,
        "public_base_is_local": _is_local(settings.public_base_url),
    }
    template = "dashboard/_business_form.html" if is_htmx(request) else f"dashboard/{mode}.html"
    return page(template, owner, **context)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".localhost")


async def _phone_taken(db: Database, phone: str | None, exclude: UUID | None) -> bool:
    if not phone:
        return False
    async with db.session() as s:
        query = select(Business.id).where(Business.phone_number == phone)
        if exclude is not None:
            query = query.where(Business.id != exclude)
        return (await s.scalar(query)) is not None


def _done(request: Request[Any, Any, Any], path: str) -> Response[Any]:
    if is_htmx(request):
        return Response(content="", status_code=200, headers={"HX-Redirect": path})
    return Redirect(path=path, status_code=303)


@get("/onboarding", name="dashboard:onboarding")
async def onboarding_page(request: Request[Any, Any, Any], owner: Owner, settings: Settings) -> Any:
    if owner.business is not None:
        return Redirect(path="/settings")
    return _form_page(request, owner, settings, form_from_business(None), mode="onboarding")


@post("/onboarding", name="dashboard:onboarding-save", status_code=200)
async def onboarding_save(request: Request[Any, Any, Any], owner: Owner, db: Database, settings: Settings) -> Any:
    if owner.business is not None:
        return _done(request, "/settings")
    form = parse_business_form(await request.form())
    if form.ok and await _phone_taken(db, form.values["phone_number"], None):
        form.errors["phone_number"] = PHONE_TAKEN
    if not form.ok:
        return _form_page(request, owner, settings, form, mode="onboarding")
    try:
        async with db.session() as s, s.begin():
            s.add(Business(owner_id=owner.user.id, **form.values))
    except IntegrityError:
        # Lost a race: either the number was just taken, or this owner's business was created in another tab.
        if await _phone_taken(db, form.values["phone_number"], None):
            form.errors["phone_number"] = PHONE_TAKEN
            return _form_page(request, owner, settings, form, mode="onboarding")
        return _done(request, "/settings")
    return _done(request, "/")


@get("/settings", name="dashboard:settings")
async def settings_page(request: Request[Any, Any, Any], owner: Owner, business: Business, settings: Settings) -> Any:
    saved = request.query_params.get("saved") == "1"
    return _form_page(request, owner, settings, form_from_business(business), mode="settings", saved=saved)


@post("/settings", name="dashboard:settings-save", status_code=200)
async def settings_save(
    request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database, settings: Settings
) -> Any:
    form = parse_business_form(await request.form())
    if form.ok and await _phone_taken(db, form.values["phone_number"], business.id):
        form.errors["phone_number"] = PHONE_TAKEN
    if not form.ok:
        return _form_page(request, owner, settings, form, mode="settings")
    try:
        async with db.session() as s, s.begin():
            row = await s.scalar(
                select(Business).where(Business.id == business.id, Business.owner_id == owner.user.id)
            )
            if row is None:  # deleted meanwhile
                return _done(request, "/onboarding")
            for key, value in form.values.items():
                setattr(row, key, value)
    except IntegrityError:
        form.errors["phone_number"] = PHONE_TAKEN
        return _form_page(request, owner, settings, form, mode="settings")
    fresh = Owner(user=owner.user, business=row)
    if is_htmx(request):
        return _form_page(request, fresh, settings, form_from_business(row), mode="settings", saved=True)
    return Redirect(path="/settings?saved=1", status_code=303)


@get("/settings/service-row", name="dashboard:service-row")
async def service_row(request: Request[Any, Any, Any], owner: Owner) -> Template:
    """One empty service row for "Add a service" (onboarding too, so it needs only a signed-in owner)."""
    raw = request.query_params.get("index", "")
    index = int(raw) if raw.isdigit() and 0 < int(raw) <= 1000 else 1
    return page("dashboard/_service_row.html", owner, index=index, s=None)


ROUTES = [onboarding_page, onboarding_save, settings_page, settings_save, service_row]
