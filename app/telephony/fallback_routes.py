"""Twilio's callbacks on the fallback path (app.telephony.fallback): the forwarded call ended, the voicemail
was recorded, and the recording is ready. Public routes, each trusted only with a valid X-Twilio-Signature."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response, post
from litestar.types import ControllerRouterHandler
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Business, Call
from app.db.services import BusinessScope
from app.settings import Settings
from app.telephony import fallback
from app.telephony.records import session_for_call_sid
from app.telephony.routes import TWIML, verified_form
from app.telephony.voicemail import voicemail_received
from app.voice.runtime import get_runtime

log = logging.getLogger(__name__)


async def _business(db: Database, call_sid: str) -> tuple[Business | None, str | None]:
    """The call's business and the language the call was held in (issue 16: its fallback speaks it)."""
    session = await session_for_call_sid(db, call_sid)
    if session is None:
        return None, None
    async with db.session() as s:
        language = await s.scalar(select(Call.language).where(Call.session_id == session.id))
    return await BusinessScope(db.session_maker, session.business_id).business(), language


@post(fallback.DIAL_DONE_PATH, name="twilio:fallback-dial", status_code=200)
async def dial_done(request: Request[Any, Any, Any], settings: Settings, db: Database) -> Response[str]:
    form = await verified_form(request, settings)
    business, language = await _business(db, form.get("CallSid"))
    if business is None:
        return Response(content=fallback.thanks_twiml(), media_type=TWIML)
    status = form.get("DialCallStatus")
    log.info("fallback forward of call %s ended: %s", form.get("CallSid"), status)
    return Response(content=fallback.after_dial_twiml(business, status, base_url=settings.public_base_url,
                                                      language=language), media_type=TWIML)


@post(fallback.RECORD_DONE_PATH, name="twilio:voicemail", status_code=200)
async def record_done(request: Request[Any, Any, Any], settings: Settings, db: Database) -> Response[str]:
    form = await verified_form(request, settings)
    business, language = await _business(db, form.get("CallSid"))
    return Response(content=fallback.thanks_twiml(business, language), media_type=TWIML)


@post(fallback.RECORDING_CALLBACK_PATH, name="twilio:voicemail-recording", status_code=204)
async def recording_ready(request: Request[Any, Any, Any], settings: Settings, db: Database) -> None:
    form = await verified_form(request, settings)
    if form.get("RecordingStatus") != "completed" or not form.get("RecordingSid"):
        return
    try:
        duration = int(float(form.get("RecordingDuration") or 0))
    except ValueError:
        duration = 0
    message_id = await voicemail_received(db, call_sid=form.get("CallSid"), recording_sid=form.get("RecordingSid"),
                                          recording_url=form.get("RecordingUrl"), duration_seconds=duration)
    if message_id is not None:
        get_runtime(request.app).jobs.poke()
        log.info("voicemail for call %s: message %s", form.get("CallSid"), message_id)


ROUTES: list[ControllerRouterHandler] = [dial_done, record_done, recording_ready]
