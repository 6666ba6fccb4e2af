"""The browser test call: the page, the session it asks for, and the call's WebSocket."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from litestar import Request, WebSocket, get, post, websocket
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from app.auth.deps import Owner
from app.db.engine import Database
from app.db.models import Business, Channel
from app.settings import Settings
from app.voice.browser import BrowserTransport
from app.voice.lifecycle import claim_session, offer_session
from app.voice.runtime import get_runtime
from app.voice.sockets import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, close_socket
from app.voice.tokens import TokenRejected

log = logging.getLogger(__name__)

# WebSocket close codes for a refused connect token (4000-4999 are the application's own range).
CLOSE_TOKEN_INVALID = 4403
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_TOKEN_USED = 4409
_CLOSE_CODES = {"expired": CLOSE_TOKEN_EXPIRED, "used": CLOSE_TOKEN_USED}


@get("/test", name="voice:test")
async def test_page(owner: Owner, business: Business, settings: Settings) -> Template:
    return Template(
        template_name="test.html",
        context={"owner": owner, "business": business, "openai_configured": bool(settings.openai_api_key)},
    )


@post("/api/sessions", name="voice:create-session", status_code=201)
async def create_session(request: Request[Any, Any, Any], business: Business, db: Database) -> dict[str, str]:
    runtime = get_runtime(request.app)
    session, token = await offer_session(db, runtime.issuer, business, Channel.BROWSER.value)
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
        session = await claim_session(db, runtime.issuer, token, session_id=session_id)
    except TokenRejected as exc:
        # Refused before any OpenAI connection: nothing is opened, nothing is billed.
        await runtime.drop_prewarmed(session_id)
        await close_socket(socket, _CLOSE_CODES.get(exc.reason, CLOSE_TOKEN_INVALID), f"token {exc.reason}")
        return
    try:
        if session.channel != Channel.BROWSER.value:
            await runtime.abandon(session.id, "a browser socket presented a phone call's token")
            await close_socket(socket, CLOSE_TOKEN_INVALID, "token mismatch")
            return
        ending = await runtime.run_call(session, BrowserTransport(socket))
        log.info("browser call %s ended: %s (%s)", session_id, ending.reason, ending.status)
        await close_socket(socket, CLOSE_NORMAL, ending.reason)
    except Exception as exc:
        log.exception("browser call %s failed", session_id)
        await runtime.abandon(session.id, f"the call failed ({type(exc).__name__})")
        await close_socket(socket, CLOSE_INTERNAL_ERROR, "internal error")


ROUTES: list[ControllerRouterHandler] = [test_page, create_session, call_socket]
