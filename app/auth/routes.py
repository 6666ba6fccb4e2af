"""Sign-in routes: Google OIDC (`/auth/google` → provider → `/auth/callback`), local sign-in, sign-out.

All of them sit behind one rate limit per client address, so guessing at the callback or hammering the
local sign-in is slow.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from litestar import MediaType, Request, Router, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from app import audit
from app.auth.cookies import SessionSigner, cleared_session_cookie, session_cookie
from app.auth.deps import Owner
from app.auth.oidc import FLOW_COOKIE_NAME, FLOW_MAX_AGE_SECONDS, FlowCookie, GoogleOIDC, SignInError
from app.auth.users import business_id_of, end_all_sessions, user_for_email, user_for_google
from app.db.engine import Database
from app.db.models import User
from app.settings import Settings
from app.web.rate_limit import shared_rate_limit
from app.web.rendering import SlicedTemplate

#: one limit per client address over all sign-in routes, counted on the database (every worker and instance)
RATE_LIMIT = shared_rate_limit("sign-in", per_minute=30)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host"})


def safe_next(raw: str | None) -> str:
    """Only same-site paths: '//evil.example' or '/\\evil' would leave the site."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")) or raw.startswith("/auth/"):
        return "/"
    return raw


def local_sign_in_allowed(request: Request[Any, Any, Any], settings: Settings) -> bool:
    """Local sign-in (email alone, no password) is for a service that only this machine can reach: Google
    is not configured, PUBLIC_BASE_URL itself is a loopback origin, and the request is from loopback with no
    forwarding headers. A tunnel that adds no headers (`ssh -R`, a TCP forwarder: what people use to give
    Twilio a public URL) looks exactly like a local browser, so the request alone can't tell; a public
    PUBLIC_BASE_URL says the service is meant to be reached from outside, and that settles it."""
    return not settings.google_configured and settings.public_base_is_loopback and is_loopback(request)


def is_loopback(request: Request[Any, Any, Any]) -> bool:
    """Whether the request comes from this machine itself, so local sign-in may be offered."""
    # A reverse proxy on this machine connects from loopback on behalf of anyone on the internet. Its
    # forwarding headers give it away; they are checked on the request itself, because app.web.proxy may
    # already have replaced the peer address with one taken from them.
    if any(name.lower() in _FORWARDING_HEADERS for name, _value in request.scope.get("headers", ())):
        return False
    # Otherwise the ASGI peer address only: X-Forwarded-For is whatever the client wants it to be.
    client = request.scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def _oidc(request: Request[Any, Any, Any], settings: Settings) -> GoogleOIDC:
    state = request.app.state
    if state.get("oidc") is None:
        state["oidc"] = GoogleOIDC(settings)
    return state["oidc"]


def _flow_cookie(value: str, settings: Settings, *, max_age: int = FLOW_MAX_AGE_SECONDS) -> Cookie:
    return Cookie(
        key=FLOW_COOKIE_NAME,
        value=value,
        max_age=max_age,
        path="/auth",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def _login_page(
    request: Request[Any, Any, Any], settings: Settings, *, next_path: str, error: str | None = None,
    email: str = "", status: int = 200,
) -> Template:
    return SlicedTemplate(
        template_name="auth/login.html",
        context={
            "google": settings.google_configured,
            "local_allowed": local_sign_in_allowed(request, settings),
            "public_base_is_loopback": settings.public_base_is_loopback,
            "next": next_path,
            "error": error,
            "email": email,
        },
        status_code=status,
        media_type=MediaType.HTML,
    )


@get("/login", name="auth:login")
async def login_page(request: Request[Any, Any, Any], settings: Settings, next: str | None = None) -> Template:
    return _login_page(request, settings, next_path=safe_next(next))


@get("/google", name="auth:google")
async def google_start(request: Request[Any, Any, Any], settings: Settings, next: str | None = None) -> Any:
    if not settings.google_configured:
        raise NotFoundException("Google sign-in is not configured")
    oidc = _oidc(request, settings)
    try:
        url, flow = await oidc.begin(safe_next(next))
    except SignInError as exc:
        return _login_page(request, settings, next_path=safe_next(next), error=str(exc), status=502)
    return Redirect(path=url, cookies=[_flow_cookie(FlowCookie(settings.session_secrets).dump(flow), settings)])


@get("/callback", name="auth:callback")
async def google_callback(
    request: Request[Any, Any, Any],
    settings: Settings,
    db: Database,
    signer: SessionSigner,
    code: str | None = None,
    returned_state: str | None = QueryParameter(name="state", default=None),
    error: str | None = None,
) -> Any:
    if not settings.google_configured:
        raise NotFoundException("Google sign-in is not configured")
    clear_flow = _flow_cookie("", settings, max_age=0)

    def refuse(message: str) -> Template:
        page = _login_page(request, settings, next_path="/", error=message, status=400)
        page.cookies.append(clear_flow)
        return page

    raw_flow = request.cookies.get(FLOW_COOKIE_NAME)
    flow = FlowCookie(settings.session_secrets).load(raw_flow) if raw_flow else None
    if flow is None:
        return refuse("This sign-in link has expired or was opened in another browser. Please sign in again.")
    if not returned_state or returned_state != flow.state:
        return refuse("The sign-in answer did not match this browser's request. Please sign in again.")
    if error:
        return refuse("Google did not sign you in (" + error[:80] + ").")
    if not code:
        return refuse("The sign-in answer had no code. Please sign in again.")
    try:
        identity = await _oidc(request, settings).finish(code, flow)
        user = await user_for_google(db, identity)
    except SignInError as exc:
        return refuse("Sign-in failed: " + str(exc) + ".")
    except PermissionError as exc:
        return refuse("Sign-in failed: " + str(exc) + ".")
    await _audit_sign_in(db, request, user, "google")
    return Redirect(
        path=flow.next_path,
        cookies=[clear_flow, session_cookie(signer.sign(user.id, user.session_epoch), secure=settings.secure_cookies)],
    )


async def _audit_sign_in(db: Database, request: Request[Any, Any, Any], user: User, method: str) -> None:
    await audit.record(db, "sign_in", business_id=await business_id_of(db, user.id), user=user, request=request,
                       detail={"method": method})


@post("/login", name="auth:local")
async def local_sign_in(
    request: Request[Any, Any, Any], settings: Settings, db: Database, signer: SessionSigner
) -> Any:
    """Sign in by email alone: only without Google, and only on a service only this machine can reach."""
    if settings.google_configured:
        raise NotFoundException()
    if not local_sign_in_allowed(request, settings):
        raise PermissionDeniedException(
            "local sign-in only works from the computer running the service, when PUBLIC_BASE_URL is a local "
            "address; set GOOGLE_CLIENT_ID to sign in from elsewhere"
        )
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()
    next_path = safe_next(str(form.get("next", "")))
    if not _EMAIL.match(email) or len(email) > 320:
        return _login_page(
            request, settings, next_path=next_path, email=email, status=400,
            error="Enter an email address like owner@example.com.",
        )
    user = await user_for_email(db, email)
    await _audit_sign_in(db, request, user, "local")
    return Redirect(
        path=next_path,
        status_code=303,
        cookies=[session_cookie(signer.sign(user.id, user.session_epoch), secure=settings.secure_cookies)],
    )


@post("/logout", name="auth:logout")
async def logout(request: Request[Any, Any, Any], owner: Owner, settings: Settings, db: Database) -> Redirect:
    """Sign-out revokes: the user's session epoch moves on, so this cookie and every copy of it, and the
    cookies of every other browser signed in to this account, stop working. `everywhere=1` (the button on
    Settings) does the same and says so in the activity log."""
    form = await request.form()
    everywhere = str(form.get("everywhere", "")) == "1"
    await end_all_sessions(db, owner.user.id)
    await audit.record(db, "sign_out_everywhere" if everywhere else "sign_out",
                       business_id=owner.business.id if owner.business else None, user=owner.user, request=request)
    return Redirect(
        path="/auth/login", status_code=303, cookies=[cleared_session_cookie(secure=settings.secure_cookies)]
    )


auth_router = Router(
    path="/auth",
    route_handlers=[login_page, google_start, google_callback, local_sign_in, logout],
    middleware=[RATE_LIMIT],
)

ROUTES = [auth_router]
