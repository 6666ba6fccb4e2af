"""Onboarding (first sign-in creates the business) and Settings (edits it): one form, inline htmx errors.

Validation errors come back as 200 with the form re-rendered (htmx swaps only 2xx responses), each error
beside its field and everything typed kept. The phone number is not typed here: it is picked from the service's
Twilio account in its own section (app.dashboard.number_settings); a transfer number must be a valid ordinary
line in the business's country (app.db.phone.transfer_error).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy.exc import IntegrityError

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page
from app.dashboard.forms import (
    COMMON_TIMEZONES,
    VOICES,
    BusinessForm,
    TransferRules,
    form_from_business,
    parse_business_form,
)
from app.dashboard.typed_input import DAY_WORDS
from app.db.engine import Database
from app.db.hours import WEEKDAYS
from app.db.models import Business
from app.db.owner_queries import OwnerScope, create_business
from app.settings import Settings

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _form_page(
    request: Request[Any, Any, Any], owner: Owner, settings: Settings, form: BusinessForm, *, mode: str,
    saved: bool = False,
) -> Template:
    context = {
        "form": form, "mode": mode, "saved": saved, "voices": VOICES, "timezones": COMMON_TIMEZONES,
        "weekdays": [(d, DAY_WORDS[d]) for d in WEEKDAYS], "twilio_configured": settings.twilio_configured,
        "public_base_url": settings.public_base_url,
        "public_base_is_local": _is_local(settings.public_base_url),
    }
    template = "dashboard/_business_form.html" if is_htmx(request) else f"dashboard/{mode}.html"
    return page(template, owner, **context)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".localhost")


def _transfer_rules(settings: Settings) -> TransferRules:
    return TransferRules(settings.transfer_allow_countries, settings.transfer_allow_international)


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
    form = parse_business_form(await request.form(), transfers=_transfer_rules(settings))
    if not form.ok:
        return _form_page(request, owner, settings, form, mode="onboarding")
    try:
        created = await create_business(db.session_maker, owner.user.id, form.values)
    except IntegrityError:
        # Lost a race: this owner's business was created in another tab. (The phone number is picked later,
        # from the service's Twilio account, in Settings.)
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
    current = await owner_scope.business()
    form = parse_business_form(await request.form(), phone_number=current.phone_number,
                               transfers=_transfer_rules(settings))
    if not form.ok:
        return _form_page(request, owner, settings, form, mode="settings")
    saved = await owner_scope.update_business(form.values)
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


@get("/settings/service-row", name="dashboard:service-row")
async def service_row(request: Request[Any, Any, Any], owner: Owner) -> Template:
    """One empty service row for "Add a service" (onboarding too, so it needs only a signed-in owner)."""
    raw = request.query_params.get("index", "")
    index = int(raw) if raw.isdigit() and 0 < int(raw) <= 1000 else 1
    return page("dashboard/_service_row.html", owner, index=index, s=None)


ROUTES = [onboarding_page, onboarding_save, settings_page, settings_save, service_row]
