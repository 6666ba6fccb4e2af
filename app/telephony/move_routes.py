"""The media stream of a phone call moved here from a draining instance (issue 11; app.voice.move).

Twilio opens it because the old instance redirected the call to `<Connect><Stream url=…/twilio/media/moved>`
with a signed single-use move token as the stream's parameter; nothing reaches OpenAI before that token is
claimed for this very call.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import WebSocket, websocket
from litestar.types import ControllerRouterHandler

from app.db.engine import Database
from app.db.services import BusinessScope
from app.settings import Settings
from app.telephony.media import HandshakeFailed, await_start
from app.telephony.routes import CLOSE_HANDSHAKE_FAILED, phone_transport
from app.voice.lifecycle import claim_move
from app.voice.move import MOVED_STREAM_PATH, load_resumed
from app.voice.recording_store import save_recording
from app.voice.routes import CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_INVALID, CLOSE_TOKEN_USED
from app.voice.runtime import get_runtime
from app.voice.sockets import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, close_socket
from app.voice.tokens import TokenRejected

log = logging.getLogger(__name__)

_CLOSE_CODES = {"expired": CLOSE_TOKEN_EXPIRED, "used": CLOSE_TOKEN_USED}


@websocket(MOVED_STREAM_PATH, name="twilio:media-moved")
async def moved_stream(socket: WebSocket[Any, Any, Any], settings: Settings, db: Database) -> None:
    runtime = get_runtime(socket.app)
    await socket.accept()
    try:
        start = await await_start(socket)
    except HandshakeFailed as exc:
        log.warning("moved twilio stream refused: %s", exc.reason)
        await close_socket(socket, CLOSE_HANDSHAKE_FAILED, exc.reason)
        return
    try:
        move, session = await claim_move(db, runtime.issuer, start.token, call_sid=start.call_sid)
    except TokenRejected as exc:
        log.warning("moved twilio stream for call %s refused: token %s", start.call_sid, exc.reason)
        await close_socket(socket, _CLOSE_CODES.get(exc.reason, CLOSE_TOKEN_INVALID), f"token {exc.reason}")
        return
    try:
        resumed = await load_resumed(db, move)
        business = await BusinessScope(db.session_maker, session.business_id).business()
        transport = phone_transport(socket, settings, business, start)
        recording = transport.recording
        log.info("call %s moved here: carrying on its record %s", start.call_sid, resumed.call.id)
        ending = await runtime.run_call(session, resumed.call, transport, resumed=resumed)
        log.info("moved call %s ended: %s (%s)", start.call_sid, ending.reason, ending.status)
        await close_socket(socket, CLOSE_NORMAL, ending.reason)
        if recording is not None:
            # The old instance saved the part before the move at the same place when its stream stopped: this
            # part is joined after it.
            await save_recording(db, settings.recordings_dir, business.id, resumed.call.id, recording,
                                 continues=True)
    except Exception as exc:
        log.exception("moved twilio stream for call %s failed", start.call_sid)
        await runtime.abandon(session.id, f"the moved call failed ({type(exc).__name__})")
        await close_socket(socket, CLOSE_INTERNAL_ERROR, "internal error")


ROUTES: list[ControllerRouterHandler] = [moved_stream]
