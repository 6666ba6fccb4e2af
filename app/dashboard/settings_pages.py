"""Onboarding (first sign-in creates the business) and Settings (edits it): one form, inline htmx errors.

Validation errors come back as 200 with the form re-rendered (htmx swaps only 2xx responses), each error
beside its field and everything typed kept. A phone number another business already uses is a field error.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.exc import IntegrityError

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page
from app.dashboard.forms import COMMON_TIMEZONES, VOICES, BusinessForm, form_from_business, parse_business_form
from app.db.engine import Database
from app.db.hours import WEEKDAY_NAMES, WEEKDAYS
from app.db.models import Business
from app.db.owner_queries import OwnerScope, create_business, number_taken
from app.settings import Settings

PHONE_TAKEN = "Another business already uses this number. Check it, or contact support if it is yours."


def _form_page(
    request: Request[Any, Any, Any], owner: Owner, settings: Settings, form: BusinessForm, *, mode: str,
    saved: bool = False,
) -> Template:
    context = {
        "form": form, "mode": mode, "saved": saved, "voices": VOICES, "timezones": COMMON_TIMEZONES,
        "weekdays": [(d, WEEKDAY_NAMES[d]) for d in WEEKDAYS], "twilio_configured": settings.twilio_configured,
        "public_base_url": settings.public_base_url,
    }
    template = "dashboard/_business_form.html" if is_htmx(request) else f"dashboard/{mode}.html"
    return page(template, owner, **context)


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
    if form.ok and await number_taken(db.session_maker, form.values["phone_number"]):
        form.errors["phone_number"] = PHONE_TAKEN
    if not form.ok:
        return _form_page(request, owner, settings, form, mode="onboarding")
    try:
        created = await create_business(db.session_maker, owner.user.id, form.values)
    except IntegrityError:
        # Lost a race: either the number was just taken, or this owner's business was created in another tab.
        if await number_taken(db.session_maker, form.values["phone_number"]):
            form.errors["phone_number"] = PHONE_TAKEN
            return _form_page(request, owner, settings, form, mode="onboarding")
        return _done(request, "/settings")
    await audit.record(db, "business.created", business_id=created.id, user=owner.user, request=request,
                       detail={"name": created.name, "phone_number": created.phone_number})
    return _done(request, "/")


@get("/settings", name="dashboard:settings")
async def settings_page(request: Request[Any, Any, Any], owner: Owner, business: Business, settings: Settings) -> Any:
    saved = request.query_params.get("saved") == "1"
    return _form_page(request, owner, settings, form_from_business(business), mode="settings", saved=saved)


@post("/settings", name="dashboard:settings-save", status_code=200)
async def settings_save(
    request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope, db: Database, settings: Settings
) -> Any:
    form = parse_business_form(await request.form())
    if form.ok and await owner_scope.number_taken_elsewhere(form.values["phone_number"]):
        form.errors["phone_number"] = PHONE_TAKEN
    if not form.ok:
        return _form_page(request, owner, settings, form, mode="settings")
    try:
        saved = await owner_scope.update_business(form.values)
    except IntegrityError:
        form.errors["phone_number"] = PHONE_TAKEN
        return _form_page(request, owner, settings, form, mode="settings")
    if saved is None:  # deleted meanwhile
        return _done(request, "/onboarding")
    row, changed = saved
    await _audit_changes(db, request, owner, row, changed)
    fresh = Owner(user=owner.user, business=row)
    if is_htmx(request):
        return _form_page(request, fresh, settings, form_from_business(row), mode="settings", saved=True)
    return Redirect(path="/settings?saved=1", status_code=303)


async def _audit_changes(
    db: Database, request: Request[Any, Any, Any], owner: Owner, row: Business, changed: dict[str, tuple[Any, Any]]
) -> None:
    # The business's own number gets its own entry with both values; other fields are named, not copied
    # (greetings and instructions can be long, and the log is for "who changed what when").
    if "phone_number" in changed:
        before, after = changed.pop("phone_number")
        await audit.record(db, "number.changed", business_id=row.id, user=owner.user, request=request,
                           detail={"before": before, "after": after})
    if changed:
        await audit.record(db, "settings.changed", business_id=row.id, user=owner.user, request=request,
                           detail={"fields": sorted(changed)})


ROUTES = [onboarding_page, onboarding_save, settings_page, settings_save]
