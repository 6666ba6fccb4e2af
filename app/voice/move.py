"""Moving live phone calls off a draining instance (issue 11 item 4: deploys that cut no call).

granian closes every WebSocket on SIGTERM, so a call can't survive the process that carries it; it can move
before the signal. When the operator drains an instance (POST /ops/drain), each live Twilio call is handed
over at its next quiet moment (nobody speaking, nothing playing, no tool call open):

1. the bridge is held (the caller's audio stops reaching the model) and the record is flushed;
2. a CallMove row is written (the realtime configuration and the call's counters) with a signed single-use
   token, and the call is redirected through Twilio's REST API to a fresh `<Connect><Stream>` on the public
   URL (`/twilio/media/moved`), which the load balancer sends to an instance that is not draining;
3. Twilio stops this stream (`stop`, socket closed) and opens the new one; this side writes its part of the
   record one last time and marks the move released, without ending the call;
4. the other instance claims the token, waits for the release, and carries on the same Call record: the
   transcript so far as conversation items (the reconnect's restore), a short resume line, the usage of both
   sessions on one record, which it finalises when the call ends.

A move is only tried when something else answers behind the public URL (its /health is 200, not "draining"):
a single instance drains by letting its calls finish. A redirect Twilio refuses leaves the call where it was
(tried again a few times); calls still here when the process stops are recorded as `service_restart`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import aiohttp
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Call, CallEvent, CallMove, CallStatus, EventKind
from app.i18n.lines import Line
from app.i18n.lines import text as line_text
from app.settings import Settings
from app.voice import lifecycle
from app.voice.bridge import CallBridge
from app.voice.recorder import CallRecorder
from app.voice.resume import ResumePoint, restore_events, resume_response
from app.voice.tokens import TokenIssuer
from app.voice.transport import MovableLine

log = logging.getLogger(__name__)

MOVED_STREAM_PATH = "/twilio/media/moved"
#: longest wait for a quiet moment before a call is moved anyway (between tool calls, never during one)
QUIET_WAIT_SECONDS = 8.0
#: after the caller's audio is held, for a transcript or usage still on its way to land in the record
SETTLE_SECONDS = 0.3
MOVE_ATTEMPTS = 3
RETRY_SECONDS = 2.0
#: how long the new instance waits for the old one's last write before reading the record anyway (the old
#: side died: what it flushed at the start of the move is there)
RELEASE_WAIT_SECONDS = 5.0


def moved_stream_url(settings: Settings) -> str:
    return settings.public_ws_base_url.rstrip("/") + MOVED_STREAM_PATH


async def somewhere_to_go(settings: Settings) -> bool:
    """Whether an instance that is not draining answers behind the public URL: the load balancer routes the
    moved stream the same way it routes this health check."""
    try:
        async with aiohttp.ClientSession() as session, session.get(
            settings.public_base_url.rstrip("/") + "/health", timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            if response.status != 200:
                return False
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        log.warning("drain: the public URL's health check failed (%s): calls stay here", type(exc).__name__)
        return False
    return isinstance(body, dict) and body.get("status") != "draining"


async def move_call(bridge: CallBridge, *, db: Database, issuer: TokenIssuer, stream_url: str) -> bool:
    """Hand one live phone call to another instance; True when it moved. A call that ends meanwhile, or that
    Twilio won't redirect after MOVE_ATTEMPTS, stays (and ends) here."""
    transport = bridge.transport
    if not isinstance(transport, MovableLine):
        return False
    loop = asyncio.get_running_loop()
    recorder = bridge.recorder
    for attempt in range(1, MOVE_ATTEMPTS + 1):
        give_up_waiting = loop.time() + QUIET_WAIT_SECONDS
        while not bridge.at_rest():
            if bridge.ending is not None:
                return False
            if loop.time() >= give_up_waiting and not bridge.must_not_be_cut():
                break  # a long monologue: it is cut (the resume line asks the caller to go ahead)
            await asyncio.sleep(0.05)
        bridge.hold(True)
        await asyncio.sleep(SETTLE_SECONDS)
        if bridge.ending is not None:
            return False
        recorder.add(EventKind.SYSTEM, "moving the call to another instance (planned restart)",
                     {"move": "started", "attempt": attempt})
        await recorder.flush()
        move_id, token = await lifecycle.offer_move(
            db, issuer, call_id=recorder.call_id, session_id=recorder.session_id,
            business_id=recorder.business_id, state=bridge.move_state())
        recorder.begin_move(move_id)
        moved = False
        try:
            moved = await transport.move_to(stream_url, token)
        finally:
            if not moved and not await lifecycle.cancel_move(db, move_id, "the redirect did not go through"):
                moved = True  # the other instance claimed it: Twilio did apply the redirect
            recorder.settle_move(moved)
        if moved:
            log.info("call %s moved to another instance", transport.call_sid)
            bridge.end(CallStatus.COMPLETED, "moved")
            return True
        if bridge.ending is not None:
            return False  # the caller hung up meanwhile: the call ends here, as usual
        recorder.add(EventKind.SYSTEM, "the call could not be moved yet: it stays here for now",
                     {"move": "failed", "attempt": attempt})
        bridge.hold(False)
        await asyncio.sleep(RETRY_SECONDS)
    log.warning("call %s could not be moved after %d attempts", transport.call_sid, MOVE_ATTEMPTS)
    return False


# -- the instance the call moves to ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResumedCall:
    """A moved call as the new instance takes it over: its Call row, its realtime configuration and where the
    bridge picks up."""

    call: Call
    session_update: dict[str, Any]
    point: ResumePoint
    sequence: int
    turns: list[tuple[str, str]]

    def restore(self, recorder: CallRecorder) -> None:
        recorder.resume(sequence=self.sequence, turns=self.turns, usage=self.call.usage or {},
                        latencies=self.call.latencies or [], engine=self.call.engine)


async def _released(db: Database, move_id: UUID) -> bool:
    async with db.session() as s:
        return await s.scalar(select(CallMove.released_at).where(CallMove.id == move_id)) is not None


async def load_resumed(db: Database, move: CallMove) -> ResumedCall:
    """Wait (bounded) for the old instance's last write, then read what the call had so far."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RELEASE_WAIT_SECONDS):
            # A few looks a second for a second or so, once per moved call: not the audio path.
            while not await _released(db, move.id):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    async with db.session() as s:
        call = await s.get(Call, move.call_id)
        assert call is not None
        rows = (await s.execute(select(CallEvent.sequence, CallEvent.kind, CallEvent.text)
                                .where(CallEvent.call_id == move.call_id).order_by(CallEvent.sequence))).all()
    turns = [(kind, text.strip()) for _seq, kind, text in rows
             if kind in {EventKind.CALLER.value, EventKind.AGENT.value} and text.strip()]
    state = move.state or {}
    session_update = dict(state.get("session_update") or {})
    open_tools = {str(k): (str(v[0]), str(v[1])) for k, v in (state.get("open_tool_calls") or {}).items()}
    elapsed = max(0.0, (datetime.now(UTC) - call.started_at).total_seconds())
    moved_line = line_text(Line.MOVED, call.language)  # in the language the call was held in
    opening = [*restore_events(session_update, turns, open_tools), resume_response(moved_line)]
    point = ResumePoint(opening=opening, elapsed_seconds=elapsed, turn=int(state.get("turn") or 0) + 1,
                        transfer_requested=bool(state.get("transfer_requested")), open_tool_calls=open_tools)
    return ResumedCall(call=call, session_update=session_update, point=point,
                       sequence=max((seq for seq, _k, _t in rows), default=0), turns=turns)
