"""Settings -> Calendar: connect Google accounts (OAuth code + PKCE, calendar scopes only), choose which of
their calendars block availability and which receive bookings, revoke; and Google's push endpoint.

The flow's state and code verifier live in a short-lived signed cookie (distinct salt from sign-in's), never
in the database. The refresh token is stored encrypted; access tokens stay in memory.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from authlib.common.security import generate_token
from itsdangerous import BadSignature, URLSafeTimedSerializer
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from app.auth.deps import Owner
from app.calendar.google import SCOPE_EVENTS, SCOPE_FREEBUSY, GoogleError, GrantRevoked
from app.calendar.runtime import get_calendar
from app.dashboard.common import is_htmx, page, parse_id
from app.db.calendar_scope import CalendarScope
from app.db.engine import Database
from app.db.models import Business
from app.db.services import ServiceError
from app.i18n.text import Text, tr
from app.settings import Settings

log = logging.getLogger(__name__)

FLOW_COOKIE = "receptionist_calendar_flow"
FLOW_MAX_AGE = 600
_SALT = "calendar-oauth-flow"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(reversed(settings.session_secrets)), salt=_SALT)


def _flow_cookie(value: str, settings: Settings, max_age: int = FLOW_MAX_AGE) -> Cookie:
    return Cookie(key=FLOW_COOKIE, value=value, max_age=max_age, httponly=True, secure=settings.secure_cookies,
                  samesite="lax", path="/settings/calendar")


def _scope(db: Database, business: Business) -> CalendarScope:
    return CalendarScope(db.session_maker, business.id)


async def _section(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                   settings: Settings, *, error: str | None = None, notice: str | None = None) -> Template:
    scope = _scope(db, business)
    context = {
        "accounts": await scope.calendar_accounts(),
        "resources": await scope.resources(),
        "conflicts": len(await scope.open_conflicts()),
        "configured": settings.google_configured,
        "push_possible": settings.public_base_url.startswith("https://"),
        "error": error,
        "notice": notice,
    }
    template = "calendar/_settings_section.html" if is_htmx(request) else "calendar/settings_page.html"
    return page(template, owner, **context)



def _from_redirect(error: str) -> Text | None:
    """An error the connect flow put in the redirect (its own English words): shown in the owner's language when
    it is one of the catalogue's messages, as it came otherwise."""
    return Text(error) if error else None

@get("/settings/calendar", name="calendar:settings")
async def calendar_settings(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                            settings: Settings) -> Template:
    notice = {"connected": tr("Google account connected. Choose the calendars to use below."),
              "revoked": tr("Access revoked.")}.get(str(request.query_params.get("done") or ""))
    return await _section(request, owner, business, db, settings, notice=notice,
                          error=_from_redirect(str(request.query_params.get("error") or "")[:200]))


@get("/settings/calendar/connect", name="calendar:connect")
async def calendar_connect(request: Request[Any, Any, Any], business: Business, settings: Settings) -> Response[Any]:
    runtime = get_calendar(request.app)
    if not runtime.google.configured:
        refused = tr("Google is not configured on this server")
        return Redirect(path="/settings/calendar?error=" + refused.replace(" ", "+"))
    state, verifier = secrets.token_urlsafe(24), generate_token(64)
    url = await runtime.google.authorization_url(state, verifier)
    value = _serializer(settings).dumps({"s": state, "v": verifier, "b": str(business.id)})
    return Redirect(path=url, cookies=[_flow_cookie(value, settings)])


@get("/settings/calendar/callback", name="calendar:callback")
async def calendar_callback(request: Request[Any, Any, Any], business: Business, db: Database,
                            settings: Settings) -> Response[Any]:
    clear = _flow_cookie("", settings, max_age=0)

    def fail(message: str) -> Response[Any]:
        return Redirect(path="/settings/calendar?error=" + message.replace(" ", "+"), cookies=[clear])

    raw = request.cookies.get(FLOW_COOKIE)
    try:
        flow = _serializer(settings).loads(raw or "", max_age=FLOW_MAX_AGE)
    except BadSignature:
        return fail(tr("The connection took too long or was started elsewhere; try again"))
    if request.query_params.get("error"):
        return fail(tr("Google did not grant access to the calendar"))
    if flow.get("b") != str(business.id) or not secrets.compare_digest(
        str(request.query_params.get("state") or ""), str(flow.get("s"))
    ):
        return fail(tr("The connection could not be verified; try again"))
    runtime = get_calendar(request.app)
    try:
        grant = await runtime.google.exchange(str(request.query_params.get("code") or ""), str(flow["v"]))
    except GoogleError as exc:
        return fail(str(exc))
    if not {SCOPE_EVENTS, SCOPE_FREEBUSY} <= grant.scopes:
        return fail(tr("Both calendar permissions are needed: events and free/busy"))
    if not grant.refresh_token:
        return fail(tr("Google sent no refresh token; remove the app's access in your Google account and try again"))
    # The account's primary calendar id is its email address.
    key = f"flow:{flow['s']}"
    runtime.google.remember(key, grant)
    try:
        listing = await runtime.google.call(
            key, grant.refresh_token, runtime.google.api.calendarList.list(minAccessRole="freeBusyReader")
        )
    except GoogleError as exc:
        return fail(tr("Google could not list the calendars (%(why)s)", why=str(exc)))
    finally:
        runtime.google.forget(key)
    primary = next((c for c in listing.get("items") or [] if c.get("primary")), None)
    email = str((primary or {}).get("id") or "Google account")
    scope = _scope(db, business)
    await scope.save_calendar_account(email, runtime.sync.cipher.encrypt(grant.refresh_token),
                                      " ".join(sorted(grant.scopes)))
    return Redirect(path="/settings/calendar?done=connected", cookies=[clear])


@get("/settings/calendar/accounts/{account_id:str}/calendars", name="calendar:account-calendars")
async def account_calendars(account_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                            db: Database) -> Template:
    scope = _scope(db, business)
    account = await scope.calendar_account(parse_id(account_id))
    runtime = get_calendar(request.app)
    error, items = None, []
    try:
        listing = await runtime.sync.call(account, runtime.google.api.calendarList.list(minAccessRole="freeBusyReader"))
        items = listing.get("items") or []
    except GrantRevoked:
        error = tr("Google no longer accepts this account's grant: revoke it here and connect again.")
    except GoogleError as exc:
        error = tr("Google could not be reached (%(why)s). Try again in a moment.", why=str(exc))
    connected = {link.google_id for _a, links in await scope.calendar_accounts() for link in links}
    return page("calendar/_account_calendars.html", owner, account=account, items=items, error=error,
                connected=connected, resources=await scope.resources())


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    data = await request.form()
    return {k: str(v) for k, v in data.items()}


@post("/settings/calendar/links", name="calendar:link-add", status_code=200)
async def link_add(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                   settings: Settings) -> Template:
    form = await _form(request)
    scope = _scope(db, business)
    try:
        resource_id = parse_id(form["resource_id"]) if form.get("resource_id") else None
        link = await scope.add_calendar_link(parse_id(form.get("account_id", "")), form.get("google_id", "")[:1024],
                                             form.get("summary", ""), form.get("access_role", "reader"), resource_id)
    except ServiceError as exc:
        return await _section(request, owner, business, db, settings, error=exc.message)
    runtime = get_calendar(request.app)
    await runtime.sync.enqueue_sync(link.id, full=True)
    runtime.wake()
    try:
        await runtime.sync.watch(link.id)
    except GoogleError as exc:
        log.info("watch failed at connect: %s", type(exc).__name__)
    return await _section(request, owner, business, db, settings, notice=f"{link.summary or link.google_id} connected.")


@post("/settings/calendar/links/{link_id:str}", name="calendar:link-update", status_code=200)
async def link_update(link_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                      db: Database, settings: Settings) -> Template:
    form = await _form(request)
    scope = _scope(db, business)
    await scope.calendar_link(parse_id(link_id))  # another business's id: 404, not a form error
    try:
        resource_id = parse_id(form["resource_id"]) if form.get("resource_id") else None
        await scope.update_calendar_link(parse_id(link_id), resource_id=resource_id,
                                         write_bookings=form.get("write_bookings") == "on")
    except ServiceError as exc:
        return await _section(request, owner, business, db, settings, error=exc.message)
    runtime = get_calendar(request.app)
    await runtime.sync.enqueue_sync(parse_id(link_id), full=True)
    runtime.wake()
    return await _section(request, owner, business, db, settings, notice=tr("Saved."))


@post("/settings/calendar/links/{link_id:str}/disconnect", name="calendar:link-disconnect", status_code=200)
async def link_disconnect(link_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                          db: Database, settings: Settings) -> Template:
    link = await _scope(db, business).calendar_link(parse_id(link_id))
    await get_calendar(request.app).sync.disconnect_link(link)
    return await _section(request, owner, business, db, settings, notice=tr("Calendar disconnected."))


@post("/settings/calendar/accounts/{account_id:str}/revoke", name="calendar:account-revoke", status_code=200)
async def account_revoke(account_id: str, request: Request[Any, Any, Any], owner: Owner, business: Business,
                         db: Database, settings: Settings) -> Template:
    scope = _scope(db, business)
    account = await scope.calendar_account(parse_id(account_id))
    runtime = get_calendar(request.app)
    for _account, links in await scope.calendar_accounts():
        for link in links:
            if link.account_id == account.id:
                await runtime.sync.disconnect_link(link)
    warning = None
    try:
        await runtime.google.revoke(runtime.sync.cipher.decrypt(account.refresh_token_encrypted))
    except Exception as exc:
        log.warning("revoke failed: %r", exc)
        warning = tr("Removed here, but Google could not be told (%(why)s); remove the access in your Google "
                     "account too.", why=type(exc).__name__)
    runtime.google.forget(str(account.id))
    await scope.delete_calendar_account(account.id)
    return await _section(request, owner, business, db, settings, notice=None if warning else tr("Access revoked."),
                          error=warning)


@post("/google/calendar/notify", name="calendar:notify", status_code=200)
async def google_notify(request: Request[Any, Any, Any]) -> Response[str]:
    """Google's push: a POST with no body and X-Goog-* headers; the channel token is checked."""
    runtime = get_calendar(request.app)
    status = await runtime.sync.notification(request.headers)
    if status == 200:
        runtime.wake()
    return Response(content="", status_code=status, media_type="text/plain")


ROUTES = [calendar_settings, calendar_connect, calendar_callback, account_calendars, link_add, link_update,
          link_disconnect, account_revoke, google_notify]
