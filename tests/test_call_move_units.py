"""The transitions of a call moving between instances (issue 11 item 4) and the record that carries on: a move
token works once, for its own call, only while the call is live and the move not given up; the old side's last
write releases the move without ending the call; the new side's recorder continues numbering, transcript,
usage and clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.billing.pricing import TokenUsage
from app.db.engine import Database
from app.db.models import Call, CallEvent, CallMove, CallStatus, EventKind, Session
from app.voice import lifecycle
from app.voice.move import load_resumed
from app.voice.recorder import CallRecorder
from app.voice.resume import MOVE_LINE
from app.voice.tokens import TokenIssuer, TokenRejected
from tests.support.dashboard import seed_call
from tests.support.data import create_owner

ISSUER = TokenIssuer(("unit-secret-0123456789abcdef",))
SID = "CA" + "c" * 32


async def live_call(db: Database) -> tuple[Session, Call]:
    _owner, business = await create_owner(db, phone_number="+15550009000")
    session, call = await seed_call(db, business.id, status=CallStatus.IN_PROGRESS.value, transcript="",
                                    started_at=datetime.now(UTC) - timedelta(seconds=40),
                                    events=[("system", "call started", {}), ("agent", "Hello, salon.", {}),
                                            ("caller", "A haircut please.", {})])
    async with db.session() as s, s.begin():
        await s.execute(update(Session).where(Session.id == session.id).values(twilio_call_sid=SID))
    return session, call


async def test_a_move_token_is_single_use_for_its_own_live_call(db: Database) -> None:
    session, call = await live_call(db)
    state = {"session_update": {"type": "realtime", "instructions": "Be kind."}, "turn": 3}
    move_id, token = await lifecycle.offer_move(db, ISSUER, call_id=call.id, session_id=session.id,
                                                business_id=call.business_id, state=state)
    with pytest.raises(TokenRejected, match="mismatch"):
        await lifecycle.claim_move(db, ISSUER, token, call_sid="CA" + "d" * 32)
    with pytest.raises(TokenRejected, match="malformed"):
        await lifecycle.claim_call(db, ISSUER, token, channel="twilio")  # a move token is no connect token
    with pytest.raises(TokenRejected, match="malformed"):
        await lifecycle.claim_move(db, ISSUER, ISSUER.sign(session.id, "x"), call_sid=SID)
    move, claimed_session = await lifecycle.claim_move(db, ISSUER, token, call_sid=SID)
    assert move.id == move_id and claimed_session.id == session.id and move.claimed_at is not None
    with pytest.raises(TokenRejected, match="used"):
        await lifecycle.claim_move(db, ISSUER, token, call_sid=SID)
    # Claimed: the old side can no longer give it up (the call did move).
    assert not await lifecycle.cancel_move(db, move_id, "too late")


async def test_a_cancelled_move_or_an_ended_call_cannot_be_claimed(db: Database) -> None:
    session, call = await live_call(db)
    first, token = await lifecycle.offer_move(db, ISSUER, call_id=call.id, session_id=session.id,
                                              business_id=call.business_id, state={})
    assert await lifecycle.cancel_move(db, first, "the redirect did not go through")
    with pytest.raises(TokenRejected, match="used"):
        await lifecycle.claim_move(db, ISSUER, token, call_sid=SID)
    _second, token = await lifecycle.offer_move(db, ISSUER, call_id=call.id, session_id=session.id,
                                                business_id=call.business_id, state={})
    async with db.session() as s, s.begin():
        await s.execute(update(Call).where(Call.id == call.id).values(ended_at=datetime.now(UTC)))
    with pytest.raises(TokenRejected, match="used"):
        await lifecycle.claim_move(db, ISSUER, token, call_sid=SID)
    async with db.session() as s:  # the refused claim left nothing claimed behind
        assert (await s.scalar(select(CallMove.claimed_at).where(CallMove.id == _second))) is None


async def test_the_old_side_releases_without_ending_and_the_new_side_carries_on(db: Database) -> None:
    session, call = await live_call(db)
    old = CallRecorder(db, call_id=call.id, session_id=session.id, business_id=call.business_id,
                       started_at=call.started_at)
    old.resume(sequence=3, turns=[("agent", "Hello, salon."), ("caller", "A haircut please.")], usage={},
               latencies=[], engine="realtime")
    old.add_usage("realtime", "gpt-realtime", TokenUsage(text_input=100, audio_output=50))
    old.add(EventKind.AGENT, "Sure, when would you like to come?")
    move_id, token = await lifecycle.offer_move(db, ISSUER, call_id=call.id, session_id=session.id,
                                                business_id=call.business_id,
                                                state={"session_update": {"type": "realtime"}, "turn": 2})
    old.begin_move(move_id)
    old.settle_move(True)
    assert await old.finalise(CallStatus.COMPLETED, "caller_transferred") is True
    assert await old.finalise(CallStatus.COMPLETED, "caller_transferred") is False  # once
    async with db.session() as s:
        row = await s.get(Call, call.id)
        assert row is not None and row.ended_at is None and row.end_reason is None
        texts = list(await s.scalars(select(CallEvent.text).where(CallEvent.call_id == call.id)
                                     .order_by(CallEvent.sequence)))
    assert texts[-2:] == ["Sure, when would you like to come?", "call moved to another instance"]

    move, _session = await lifecycle.claim_move(db, ISSUER, token, call_sid=SID)
    resumed = await load_resumed(db, move)
    assert resumed.turns == [("agent", "Hello, salon."), ("caller", "A haircut please."),
                             ("agent", "Sure, when would you like to come?")]
    assert resumed.point.turn == 3 and resumed.point.elapsed_seconds >= 40
    assert resumed.point.opening[0]["type"] == "session.update"
    assert [e["type"] for e in resumed.point.opening[1:4]] == ["conversation.item.create"] * 3
    assert MOVE_LINE in resumed.point.opening[-1]["response"]["instructions"]
    new = CallRecorder(db, call_id=call.id, session_id=session.id, business_id=call.business_id,
                       started_at=resumed.call.started_at)
    resumed.restore(new)
    assert new.offset_ms() >= 40_000 and new.caller_turns == 1
    new.add_usage("realtime", "gpt-realtime", TokenUsage(text_input=10, audio_output=5))
    new.add(EventKind.CALLER, "Tomorrow at ten.")
    assert await new.finalise(CallStatus.COMPLETED, "goodbye") is True
    async with db.session() as s:
        row = await s.get(Call, call.id)
        sequences = list(await s.scalars(select(CallEvent.sequence).where(CallEvent.call_id == call.id)
                                         .order_by(CallEvent.sequence)))
    assert row is not None and row.end_reason == "goodbye" and row.ended_at is not None
    assert sequences == list(range(1, len(sequences) + 1))
    assert row.usage["realtime"]["text_input"] == 110 and row.usage["realtime"]["audio_output"] == 55
    assert row.transcript.splitlines()[-2:] == ["Agent: Sure, when would you like to come?", "Caller: Tomorrow at ten."]


async def test_a_move_that_did_not_happen_ends_the_call_here_as_usual(db: Database) -> None:
    session, call = await live_call(db)
    recorder = CallRecorder(db, call_id=call.id, session_id=session.id, business_id=call.business_id,
                            started_at=call.started_at)
    recorder.resume(sequence=3, turns=[], usage={}, latencies=[], engine=None)
    move_id, _token = await lifecycle.offer_move(db, ISSUER, call_id=call.id, session_id=session.id,
                                                 business_id=call.business_id, state={})
    recorder.begin_move(move_id)
    recorder.settle_move(False)  # Twilio refused the redirect, or the caller hung up meanwhile
    assert await recorder.finalise(CallStatus.COMPLETED, "caller_hung_up") is True
    async with db.session() as s:
        row = await s.get(Call, call.id)
    assert row is not None and row.end_reason == "caller_hung_up" and row.ended_at is not None
