"""The browser test call: the page, the session it asks for, and the call's WebSocket."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from litestar import Request, WebSocket, get, post, websocket
from litestar.exceptions import LitestarException, ValidationException
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from app.auth.deps import Owner
from app.db.engine import Database
from app.db.models import Business, Channel
from app.db.phone import PhoneError, business_region, national_format, normalize_phone
from app.db.services import BusinessScope, NotFound
from app.i18n.languages import for_owner
from app.i18n.pages import in_language, render_context
from app.i18n.text import Text, message_of, tr
from app.settings import Settings
from app.voice.browser import BrowserTransport
from app.voice.lifecycle import claim_call, offer_session
from app.voice.pcm_recording import PcmStereoRecording
from app.voice.recording_store import save_recording
from app.voice.runtime import get_runtime
from app.voice.sockets import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, close_socket
from app.voice.tokens import TokenRejected
from app.web.rate_limit import shared_rate_limit
from app.web.rendering import SlicedTemplate

log = logging.getLogger(__name__)

# WebSocket close codes for a refused connect token (4000-4999 are the application's own range).
CLOSE_TOKEN_INVALID = 4403
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_TOKEN_USED = 4409
_CLOSE_CODES = {"expired": CLOSE_TOKEN_EXPIRED, "used": CLOSE_TOKEN_USED}


@get("/test", name="voice:test")
async def test_page(owner: Owner, business: Business, settings: Settings, db: Database) -> Template:
    region = business_region(business.phone_number, business.timezone)
    customers = await BusinessScope(db.session_maker, business.id).recent_customers()
    return SlicedTemplate(
        template_name="test.html",
        context={"owner": owner, "business": business, "openai_configured": bool(settings.openai_api_key),
                 **render_context(for_owner(business.languages)),  # issue 16: the owner's language
                 "test_customers": [{"id": c.id, "name": c.name, "shown": national_format(c.phone, region)}
                                    for c in customers]},
    )


async def test_caller_phone(db: Database, business: Business, body: Any) -> str | None:
    """The number a browser test call stands in for, as the owner picked it on /test: a customer's, a new
    caller's, or none (a withheld number). The tools then vouch for it as a phone line vouches for `From`."""
    def words(text: Text) -> str:  # the test page shows the refusal as is: in the owner's language (issue 16)
        return in_language(text, for_owner(business.languages))

    choice = body.get("caller", "withheld") if isinstance(body, dict) else "withheld"
    if choice in ("withheld", "", None):
        return None
    scope = BusinessScope(db.session_maker, business.id)
    if isinstance(choice, str) and choice.startswith("customer:"):
        try:
            return (await scope.get_customer(UUID(choice.removeprefix("customer:")))).phone
        except (ValueError, NotFound):
            raise ValidationException(detail=words(tr("That customer isn't one of yours; pick another."))) from None
    if choice == "new":
        phone = body.get("phone") if isinstance(body.get("phone"), str) else ""
        if not phone.strip():
            raise ValidationException(detail=words(tr("Type the new caller's phone number, or choose another caller.")))
        try:
            return normalize_phone(phone, None if phone.strip().startswith("+") else
                                   business_region(business.phone_number, business.timezone))
        except PhoneError as exc:
            refused = tr("The new caller's number: %(why)s", why=message_of(exc))
            raise ValidationException(detail=words(refused)) from None
    raise ValidationException(detail=words(tr("Choose who the test caller is.")))


#: each test call opens a realtime session (billed): a signed-in browser gets 20 a minute, over all instances
SESSION_RATE_LIMIT = shared_rate_limit("test-sessions", per_minute=20)


@post("/api/sessions", name="voice:create-session", status_code=201, middleware=[SESSION_RATE_LIMIT])
async def create_session(request: Request[Any, Any, Any], business: Business, db: Database) -> dict[str, str]:
    runtime = get_runtime(request.app)
    try:
        body = await request.json()
    except (ValueError, LitestarException):  # an empty or non-JSON body: the default caller
        body = {}
    caller_phone = await test_caller_phone(db, business, body)
    session, token = await offer_session(db, runtime.issuer, business, Channel.BROWSER.value,
                                         caller_phone=caller_phone)
    runtime.prewarm(session.id)
    return {
        "session_id": str(session.id),
        "token": token,
        "ws_url": f"/ws/calls/{session.id}?token={token}",
    }


@websocket("/ws/calls/{session_id:uuid}", name="voice:call-socket")
async def call_socket(socket: WebSocket[Any, Any, Any], session_id: UUID, db: Database) -> None:
    runtime = get_runtime(socket.app)
    await socket.accept()
    token = socket.query_params.get("token", "")
    try:
        session, call = await claim_call(db, runtime.issuer, token, channel=Channel.BROWSER.value,
                                         session_id=session_id)
    except TokenRejected as exc:
        # Refused before any OpenAI connection: nothing is opened, nothing is billed.
        await runtime.drop_prewarmed(session_id)
        await close_socket(socket, _CLOSE_CODES.get(exc.reason, CLOSE_TOKEN_INVALID), f"token {exc.reason}")
        return
    try:
        business = await BusinessScope(db.session_maker, session.business_id).business()
        # Recorded like phone calls when the business records calls (the test page says so before the call).
        recording = PcmStereoRecording() if business.recording_enabled else None
        ending = await runtime.run_call(session, call, BrowserTransport(socket, recording=recording))
        log.info("browser call %s ended: %s (%s)", session_id, ending.reason, ending.status)
        await close_socket(socket, CLOSE_NORMAL, ending.reason)
        if recording is not None:
            await save_recording(db, runtime.settings.recordings_dir, business.id, call.id, recording)
    except Exception as exc:
        log.exception("browser call %s failed", session_id)
        await runtime.abandon(session.id, f"the call failed ({type(exc).__name__})")
        await close_socket(socket, CLOSE_INTERNAL_ERROR, "internal error")


ROUTES: list[ControllerRouterHandler] = [test_page, create_session, call_socket]
