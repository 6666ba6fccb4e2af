"""Twilio's callbacks for the calls the service places, each signed (X-Twilio-Signature, checked against the
public URL) and each naming its outbound row in the path; a CallSid that is not that row's attempt changes
nothing.

- `/voice`: the answered call's webhook (`Direction=outbound-api`): a Session for the number called (the
  vouched number) and the media stream's TwiML, exactly as for a call to the business;
- `/amd`: the asynchronous answering-machine verdict (`AnsweredBy`);
- `/status`: call progress (initiated, ringing, answered, completed, busy, no-answer, failed, canceled);
- `/dialed`: the `<Dial action>` of a click-to-call, once the customer's leg ends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Litestar, Request, Response, post
from litestar.types import ControllerRouterHandler
from twilio.twiml.voice_response import VoiceResponse

from app.billing.call_cost import phone_call_over
from app.db.engine import Database
from app.db.models import Business, OutboundCall, OutboundKind, OutboundStatus
from app.outbound.dialer import AI_KINDS, Dialer, click_to_call_dialed, click_to_call_ended
from app.settings import Settings
from app.telephony import twiml
from app.telephony.call_plan import plan_phone_call
from app.telephony.records import FINAL_STATUSES, finalise_without_stream, offer_twilio_session
from app.telephony.routes import verified_form
from app.voice.runtime import get_runtime

log = logging.getLogger(__name__)

TWIML = "text/xml"


def get_dialer(app: Litestar) -> Dialer:
    return app.state.outbound  # type: ignore[no-any-return]


def _twiml(body: str) -> Response[str]:
    return Response(content=body, media_type=TWIML)


async def _business(db: Database, business_id: UUID) -> Business | None:
    async with db.session() as s:
        return await s.get(Business, business_id)


@post("/twilio/outbound/{row_id:uuid}/voice", name="outbound:voice", status_code=200)
async def outbound_voice(request: Request[Any, Any, Any], row_id: UUID, settings: Settings,
                         db: Database) -> Response[str]:
    form = await verified_form(request, settings)
    call_sid = form.get("CallSid")
    dialer = get_dialer(request.app)
    row = await dialer.attempt(row_id, call_sid)
    if (row is None or row.kind not in AI_KINDS or row.status != OutboundStatus.DIALING.value
            or form.get("Direction") != "outbound-api"):
        log.warning("outbound voice webhook for %s: not an attempt in progress", row_id)
        return _twiml(twiml.say_and_hang_up(twiml.UNAVAILABLE_APOLOGY))
    business = await _business(db, row.business_id)
    if business is None or not settings.openai_api_key:
        return _twiml(twiml.say_and_hang_up(twiml.UNAVAILABLE_APOLOGY))
    runtime = get_runtime(request.app)
    # The number the service dialled is the customer's own: it is the vouched number of this call.
    offered = await offer_twilio_session(db, runtime.issuer, business, call_sid=call_sid, caller_phone=row.to_phone)
    if offered is None:
        return _twiml(twiml.say_and_hang_up(twiml.UNAVAILABLE_APOLOGY))
    session, token = offered
    runtime.prewarm(session.id, prepare=lambda: plan_phone_call(db, session, business))
    log.info("outbound call %s answered: session %s offered", row_id, session.id)
    return _twiml(twiml.connect_stream(twiml.stream_url(settings.public_ws_base_url), token))


@post("/twilio/outbound/{row_id:uuid}/amd", name="outbound:amd", status_code=204)
async def outbound_amd(request: Request[Any, Any, Any], row_id: UUID, settings: Settings, db: Database) -> None:
    form = await verified_form(request, settings)
    call_sid, answered_by = form.get("CallSid"), form.get("AnsweredBy")
    dialer = get_dialer(request.app)
    row = await dialer.attempt(row_id, call_sid)
    if row is None or not answered_by or row.kind not in AI_KINDS:
        return
    business = await _business(db, row.business_id)
    if business is not None:
        log.info("outbound call %s answered by %s", row_id, answered_by)
        await dialer.amd_result(row, business, call_sid, answered_by)


@post("/twilio/outbound/{row_id:uuid}/status", name="outbound:status", status_code=204)
async def outbound_status(request: Request[Any, Any, Any], row_id: UUID, settings: Settings, db: Database) -> None:
    form = await verified_form(request, settings)
    call_sid, call_status = form.get("CallSid"), form.get("CallStatus")
    dialer = get_dialer(request.app)
    row = await dialer.attempt(row_id, call_sid)
    if row is None:
        return
    if call_status == "in-progress" and row.kind in AI_KINDS:
        await dialer.mark_call_outbound(row, call_sid)
        return
    if call_status not in FINAL_STATUSES:
        return
    try:
        await _attempt_over(request, row, call_sid, call_status, form.get("CallDuration"), db)
    finally:
        # Issue 16 item 6: the attempt is recorded; what Twilio charged for it (both legs of a click-to-call)
        # is read once Twilio has priced it.
        async with db.write() as s:
            await phone_call_over(s, call_sid)


async def _attempt_over(request: Request[Any, Any, Any], row: OutboundCall, call_sid: str, call_status: str,
                        call_duration: str | None, db: Database) -> None:
    dialer = get_dialer(request.app)
    try:
        duration = float(call_duration or 0)
    except ValueError:
        duration = 0.0
    if row.kind == OutboundKind.CLICK_TO_CALL.value:
        await click_to_call_ended(dialer, row, call_sid, call_status, duration)
        return
    business = await _business(db, row.business_id)
    if business is None:
        return
    if call_status == "completed":
        # Answered: the receptionist's stream (or the voicemail) ran. A stream that never connected is closed
        # here, exactly once, as for any Twilio call.
        closed = await finalise_without_stream(db, call_sid, call_status, duration)
        if closed is not None:
            await get_runtime(request.app).drop_prewarmed(closed[0])
        await dialer.answered_and_ended(row, call_sid)
    else:
        await dialer.unanswered(row, business, call_sid, call_status,
                                started_at=row.dialing_since or datetime.now(UTC))


@post("/twilio/outbound/{row_id:uuid}/dialed", name="outbound:dialed", status_code=200)
async def outbound_dialed(request: Request[Any, Any, Any], row_id: UUID, settings: Settings) -> Response[str]:
    form = await verified_form(request, settings)
    dialer = get_dialer(request.app)
    row = await dialer.attempt(row_id, form.get("CallSid"))
    if row is not None and row.kind == OutboundKind.CLICK_TO_CALL.value:
        await click_to_call_dialed(dialer, row, form.get("DialCallStatus"))
    response = VoiceResponse()
    response.hangup()
    return _twiml(str(response))


ROUTES: list[ControllerRouterHandler] = [outbound_voice, outbound_amd, outbound_status, outbound_dialed]
