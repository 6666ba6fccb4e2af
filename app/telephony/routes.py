"""Twilio's three entry points: the voice webhook, the media-stream WebSocket and the status callback.

Webhooks are trusted only with a valid `X-Twilio-Signature`; the media stream only with the signed,
single-use token that the voice webhook put in its TwiML.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Request, Response, WebSocket, post, websocket
from litestar.exceptions import HTTPException, PermissionDeniedException, ValidationException
from litestar.types import ControllerRouterHandler

from app import metrics
from app.billing.call_cost import phone_call_over
from app.billing.usage import BillingScope
from app.db.engine import Database
from app.db.models import Business, Call, Channel, Session, plan_limit_end_reason
from app.i18n import languages
from app.i18n.lines import Line, text
from app.settings import Settings
from app.telephony import fallback, twiml
from app.telephony.call_plan import PhoneCallPlan, plan_phone_call
from app.telephony.greeting import RECORDING_NOTICE, phone_greeting
from app.telephony.media import HandshakeFailed, StreamStart, await_start
from app.telephony.mulaw_recording import StereoRecording
from app.telephony.records import (
    FINAL_STATUSES,
    business_for_number,
    finalise_without_stream,
    offer_twilio_session,
    phone_or_none,
)
from app.telephony.rest import TwilioCalls
from app.telephony.signature import FormParams, describe_refusal, public_url, signature_is_valid
from app.telephony.transfers import usable_transfer_number
from app.telephony.twilio_transport import TwilioTransport
from app.voice.lifecycle import claim_call, fail_unstarted, record_without_ai
from app.voice.recording_store import save_recording
from app.voice.routes import CLOSE_TOKEN_EXPIRED, CLOSE_TOKEN_INVALID, CLOSE_TOKEN_USED
from app.voice.runtime import CallRuntime, get_runtime
from app.voice.sockets import CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, close_socket
from app.voice.tokens import TokenRejected

log = logging.getLogger(__name__)

CLOSE_HANDSHAKE_FAILED = 4400
_CLOSE_CODES = {"expired": CLOSE_TOKEN_EXPIRED, "used": CLOSE_TOKEN_USED}
TWIML = "text/xml"


async def verified_form(request: Request[Any, Any, Any], settings: Settings) -> FormParams:
    """The webhook's form fields, once its signature over the public URL has been checked (403 if not)."""
    if not settings.twilio_auth_token:
        log.error("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set, so signatures can't be checked")
        raise HTTPException(status_code=503, detail="Twilio is not configured on this service")
    form = await request.form()
    params = FormParams([(name, str(value)) for name, value in form.multi_items()])
    url = public_url(settings.public_base_url, request.url.path, request.url.query)
    if not signature_is_valid(settings.twilio_auth_token, url, params, request.headers):
        log.warning("%s from %s", describe_refusal(url, request.headers), request.client.host if request.client
                    else "unknown address")
        raise PermissionDeniedException(detail="invalid Twilio signature")
    return params


def _twiml(body: str) -> Response[str]:
    return Response(content=body, media_type=TWIML)


@post("/twilio/voice", name="twilio:voice", status_code=200)
async def voice_webhook(request: Request[Any, Any, Any], settings: Settings, db: Database) -> Response[str]:
    began = time.perf_counter()
    try:
        return await _answer_voice_webhook(request, settings, db)
    finally:
        metrics.call_setup_ms.labels("webhook").observe((time.perf_counter() - began) * 1000)


async def _answer_voice_webhook(request: Request[Any, Any, Any], settings: Settings, db: Database) -> Response[str]:
    form = await verified_form(request, settings)
    call_sid, called, caller = form.get("CallSid"), form.get("To"), form.get("From")
    if not call_sid.startswith("CA"):
        raise ValidationException(detail="CallSid is missing")
    business = await business_for_number(db, called)
    if business is None:
        log.warning("call %s: no business has the number it was made to", call_sid)
        return _twiml(twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER_APOLOGY))
    decision = await BillingScope(db.session_maker, business.id, settings).answer_with_ai()
    if not decision.answer_with_ai:
        forward_to = usable_transfer_number(business, settings)
        forwarded = forward_to is not None
        if not await record_without_ai(db, business, call_sid=call_sid, caller_phone=phone_or_none(caller),
                                       forwarded=forwarded):
            log.info("call %s: plan-limit webhook repeated", call_sid)
        log.info("call %s for business %s not answered by the AI (%s)", call_sid, business.id,
                 plan_limit_end_reason(forwarded))
        return _twiml(fallback.fallback_twiml(business, fallback.FallbackReason.PLAN_LIMIT,
                                              base_url=settings.public_base_url, forward_to=forward_to))
    primary = languages.offered(business.languages)[0]
    runtime = get_runtime(request.app)
    offered = await offer_twilio_session(db, runtime.issuer, business, call_sid=call_sid,
                                         caller_phone=phone_or_none(caller))
    if offered is None:
        log.warning("call %s: voice webhook repeated after its stream connected", call_sid)
        return _twiml(twiml.say_and_hang_up(text(Line.CALL_UNAVAILABLE, primary), primary.code))
    session, token = offered
    if not settings.openai_api_key:
        # Known up front: the AI can't answer this call, so the webhook's answer is the fallback itself.
        await fail_unstarted(db, session.id, "OpenAI is not configured on this service (OPENAI_API_KEY)")
        return _twiml(fallback.fallback_twiml(business, fallback.FallbackReason.AI_UNAVAILABLE,
                                              base_url=settings.public_base_url,
                                              forward_to=usable_transfer_number(business, settings)))
    runtime.prewarm(session.id, prepare=lambda: plan_phone_call(db, session, business))
    log.info("call %s for business %s: session %s offered", call_sid, business.id, session.id)
    return _twiml(twiml.connect_stream(twiml.stream_url(settings.public_ws_base_url), token, primary.code))


@websocket("/twilio/media", name="twilio:media")
async def media_stream(socket: WebSocket[Any, Any, Any], settings: Settings, db: Database) -> None:
    runtime = get_runtime(socket.app)
    await socket.accept()
    try:
        start = await await_start(socket)
    except HandshakeFailed as exc:
        log.warning("twilio stream refused: %s", exc.reason)
        await close_socket(socket, CLOSE_HANDSHAKE_FAILED, exc.reason)
        return
    began = time.perf_counter()
    try:
        session, call = await claim_call(db, runtime.issuer, start.token, channel=Channel.TWILIO.value,
                                         call_sid=start.call_sid)
        metrics.call_setup_ms.labels("claim").observe((time.perf_counter() - began) * 1000)
        # The webhook may have been answered by another worker or instance, whose prewarmed link can't come
        # here: start the connect now (no-op when this process holds one), so it runs beside the call's
        # set-up. Not before the claim: a replayed token must not cost an OpenAI connection.
        runtime.prewarm(session.id)
    except TokenRejected as exc:
        log.warning("twilio stream for call %s refused: token %s", start.call_sid, exc.reason)
        try:
            # Whoever holds this token can't be trusted with its session: drop the prewarmed connection.
            await runtime.drop_prewarmed(runtime.issuer.read(start.token)[0])
        except TokenRejected:
            pass
        await close_socket(socket, _CLOSE_CODES.get(exc.reason, CLOSE_TOKEN_INVALID), f"token {exc.reason}")
        return
    try:
        await _run_stream(socket, settings, db, runtime, session, call, start)
    except Exception as exc:
        log.exception("twilio stream for call %s failed", start.call_sid)
        await runtime.abandon(session.id, f"the call failed ({type(exc).__name__})")
        await close_socket(socket, CLOSE_INTERNAL_ERROR, "internal error")


async def _run_stream(socket: WebSocket[Any, Any, Any], settings: Settings, db: Database, runtime: CallRuntime,
                      session: Session, call: Call, start: StreamStart) -> None:
    began = time.perf_counter()
    prepared = runtime.take_prepared(session.id)
    plan: PhoneCallPlan = await prepared if prepared is not None else await plan_phone_call(db, session)
    metrics.call_setup_ms.labels("plan").observe((time.perf_counter() - began) * 1000)
    business = plan.business
    transport = phone_transport(socket, settings, business, start)
    recording = transport.recording
    known = business, plan.caller
    # Issue 16: on a call the business placed, the receptionist opens with who is calling and why.
    if (opening := plan.opening) is not None:
        notice = RECORDING_NOTICE + " " if recording is not None else ""
        ending = await runtime.run_call(session, call, transport, greet=lambda _b, _c: notice + opening.greeting,
                                        purpose=opening.purpose, known=known)
    else:
        ending = await runtime.run_call(
            session, call, transport, greet=lambda b, caller: phone_greeting(b, caller, recorded=recording is not None),
            known=known,
        )
    log.info("call %s ended: %s (%s)", start.call_sid, ending.reason, ending.status)
    # After `stop` (or a hang-up) the socket still gets its close frame rather than a reset connection.
    await close_socket(socket, CLOSE_NORMAL, ending.reason)
    if recording is not None:
        await save_recording(db, settings.recordings_dir, business.id, call.id, recording)


def phone_transport(socket: WebSocket[Any, Any, Any], settings: Settings, business: Business,
                    start: StreamStart) -> TwilioTransport:
    """The Twilio side of a phone call's bridge, for a first stream and a moved one alike: recorded when the
    business records, its fallback (forward or voicemail) in the call's language."""
    return TwilioTransport(
        socket,
        stream_sid=start.stream_sid,
        call_sid=start.call_sid,
        calls=TwilioCalls.from_settings(settings),
        recording=StereoRecording() if business.recording_enabled else None,
        caller_id=business.phone_number,
        stream_started=start.arrived,
        fallback=lambda reason, language: _fallback_for(business, reason, settings, language),
    )


def _fallback_for(business: Business, reason: str, settings: Settings, language: str | None) -> tuple[str, str]:
    forward_to = usable_transfer_number(business, settings)
    document = fallback.fallback_twiml(business, reason, base_url=settings.public_base_url, forward_to=forward_to,
                                       language=language)
    return document, ("forwarded to the business" if forward_to else "voicemail")


@post("/twilio/status", name="twilio:status", status_code=204)
async def status_callback(request: Request[Any, Any, Any], settings: Settings, db: Database) -> None:
    form = await verified_form(request, settings)
    call_sid, call_status = form.get("CallSid"), form.get("CallStatus")
    if not call_sid or call_status not in FINAL_STATUSES:
        return
    try:
        duration = float(form.get("CallDuration") or 0)
    except ValueError:
        duration = 0.0
    closed = await finalise_without_stream(db, call_sid, call_status, duration)
    if closed is not None:
        session_id, call_id = closed
        await get_runtime(request.app).drop_prewarmed(session_id)
        log.info("call %s ended without its stream (%s): call record %s closed", call_sid, call_status, call_id)
    async with db.write() as s:  # issue 16 item 6: Twilio says the call is over; its price comes later
        await phone_call_over(s, call_sid)


ROUTES: list[ControllerRouterHandler] = [voice_webhook, media_stream, status_callback]
