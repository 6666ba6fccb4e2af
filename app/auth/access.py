"""Deny by default: every route needs a signed-in owner unless its path is on `PUBLIC_PATHS`.

The guard is installed on the application, so a route added tomorrow is protected the day it is added,
whether or not its handler asks for `owner`. Public routes carry their own proof instead (a webhook
signature, a single-use connect token) or show nothing private. `tests/test_isolation.py` walks
`app.routes` and fails for any route that answers without an owner and is not on this list.

A cookie is honoured only while the epoch it carries equals the user's `session_epoch`: sign-out bumps
the epoch, revoking every cookie issued before it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import select

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.engine import Database
from app.db.models import Business, User

# Path templates (as Litestar routes them, `scope["path_template"]`) that answer without an owner, and why.
PUBLIC_PATHS: dict[str, str] = {
    "/": "the landing page for visitors (no per-visitor data); the handler shows the dashboard only to a "
         "signed-in owner, through the same cookie check (app.dashboard.overview)",
    "/favicon.ico": "the site icon browsers ask for at the root; a static file",
    "/health": "liveness for the platform's health check; says nothing about any business",
    "/metrics": "Prometheus scrape; the operator's METRICS_TOKEN bearer token checked (app.web.metrics)",
    "/static/{file_path:path}": "stylesheets, htmx and the call page's scripts",
    "/auth/login": "the sign-in page and local sign-in (itself limited to a loopback deployment)",
    "/auth/google": "starts Google sign-in",
    "/auth/callback": "Google's answer; checked against the signed flow cookie",
    "/twilio/voice": "Twilio webhook; X-Twilio-Signature checked",
    "/twilio/status": "Twilio status callback; X-Twilio-Signature checked",
    "/twilio/media": "Twilio media stream; the signed single-use token from the voice webhook's TwiML",
    "/twilio/media/moved": "Twilio media stream of a call moved off a draining instance (issue 11); the signed "
                           "single-use move token from the redirect's TwiML",
    "/ws/calls/{session_id:uuid}": "browser test call socket; the signed single-use token from POST /api/sessions",
    "/billing/polar/webhook": "Polar events; Standard Webhooks signature checked",
    "/google/calendar/notify": "Google Calendar push; X-Goog-Channel-Token checked against the channel's secret",
    # Issue 11: the fallback's Twilio callbacks, and the operator's drain.
    "/twilio/fallback/dial": "Twilio <Dial action> of the fallback forward; X-Twilio-Signature checked",
    "/twilio/voicemail": "Twilio <Record action> of a voicemail; X-Twilio-Signature checked",
    "/twilio/voicemail/recording": "Twilio recording status callback; X-Twilio-Signature checked",
    "/ops/drain": "the operator's drain before a restart; OPERATOR_TOKEN bearer token checked (app.web.drain)",
    # Issue 9: delivery reports for the texts the inbox sends.
    "/twilio/messages/status": "Twilio message status callback; X-Twilio-Signature checked",
    # Issue 16: the callbacks of calls the service places (each names its outbound row; a CallSid that is not
    # that row's attempt changes nothing).
    "/twilio/outbound/{row_id:uuid}/voice": "Twilio voice webhook of a placed call; X-Twilio-Signature checked",
    "/twilio/outbound/{row_id:uuid}/amd": "Twilio async AMD verdict; X-Twilio-Signature checked",
    "/twilio/outbound/{row_id:uuid}/status": "Twilio status callback of a placed call; X-Twilio-Signature checked",
    "/twilio/outbound/{row_id:uuid}/dialed": "Twilio <Dial action> of a click-to-call; X-Twilio-Signature checked",
}

_OWNER_STATE_KEY = "receptionist_owner"


def _untyped(template: str) -> str:
    # Litestar's routes spell parameters with their type (`{session_id:uuid}`); the path template it puts
    # in the request scope leaves the type out (`{session_id}`). Compare the two untyped.
    return _PARAM_TYPE.sub(r"{\1}", template)


_PARAM_TYPE = re.compile(r"{(\w+):\w+}")
_PUBLIC = frozenset(_untyped(path) for path in PUBLIC_PATHS)


@lru_cache(maxsize=512)  # one entry per route template: the check runs on every request
def is_public(path_template: str) -> bool:
    """Whether a route (by its `app.routes` path or the request scope's `path_template`) is public."""
    return _untyped(path_template) in _PUBLIC


async def load_owner(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[User, Business | None]:
    """The signed-in user and their business, or NotAuthorized (no cookie, bad signature, revoked epoch)."""
    cached = connection.scope["state"].get(_OWNER_STATE_KEY)
    if cached is not None:
        return cached
    raw = connection.cookies.get(COOKIE_NAME)
    signer: SessionSigner = connection.app.state["signer"]
    claims = signer.load(raw) if raw else None
    if claims is None:
        raise NotAuthorizedException("sign in to continue")
    db: Database = connection.app.state["db"]
    async with db.session() as s:
        user = await s.get(User, claims.user_id)
        if user is None or user.session_epoch != claims.epoch:
            raise NotAuthorizedException("sign in to continue")
        business = await s.scalar(select(Business).where(Business.owner_id == user.id))
    connection.scope["state"][_OWNER_STATE_KEY] = (user, business)
    return user, business


def business_seen(connection: ASGIConnection[Any, Any, Any, Any]) -> Business | None:
    """The business of the owner this request already loaded, if any (issue 16: an error page is then in the
    owner's language); never a database read, so an error page can't fail on one."""
    cached = connection.scope["state"].get(_OWNER_STATE_KEY)
    return cached[1] if cached is not None else None


async def owner_required(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """The application-wide guard."""
    if is_public(connection.scope.get("path_template", "")):
        return
    await load_owner(connection)
