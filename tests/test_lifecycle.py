"""The Session/Call lifecycle (app.voice.lifecycle): one test per transition, and every path that claims a
session and fails before its call runs leaves the session closed and no realtime connection open."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Call, CallEvent, Customer, Job, Session
from app.voice import lifecycle
from app.voice.runtime import CallRuntime
from app.voice.tokens import TokenIssuer, TokenRejected
from tests.doubles.openai_double import OpenAIDouble
from tests.support.data import create_owner
from tests.support.voice import PlaybackTransport

pytest_plugins = ("tests.support.voice_fixtures",)

ISSUER = TokenIssuer(("lifecycle-secret-0123456789abcdef",))


async def session_row(db: Database, session_id: Any) -> Session:
    async with db.session() as s:
        row = await s.get(Session, session_id)
        assert row is not None
        return row


async def call_of(db: Database, session_id: Any) -> Call | None:
    async with db.session() as s:
        return await s.scalar(select(Call).where(Call.session_id == session_id))


async def test_offer_claim_start_flush_finalise(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    session, token = await lifecycle.offer_session(call_db, ISSUER, business, "browser")
    assert (await session_row(call_db, session.id)).status == "pending"
    claimed, call = await lifecycle.claim_call(call_db, ISSUER, token, channel="browser", session_id=session.id)
    assert claimed.token_used_at is not None and call.session_id == session.id
    with pytest.raises(TokenRejected, match="used"):
        await lifecycle.claim_call(call_db, ISSUER, token, channel="browser", session_id=session.id)
    assert (await session_row(call_db, session.id)).status == "active"
    event = CallEvent(call_id=call.id, business_id=business.id, sequence=1, offset_ms=0, kind="caller", text="hi")
    assert await lifecycle.flush_call(call_db, call.id, {"transcript": "Caller: hi"}, [event])
    ended = await lifecycle.finalise_call(call_db, call.id, session.id, {"transcript": "Caller: hi"}, [],
                                          status="completed", reason="goodbye", failure=None,
                                          started_at=call.started_at)
    assert ended
    # Exactly once: a second finalise and a late flush change nothing.
    assert not await lifecycle.finalise_call(call_db, call.id, session.id, {}, [], status="failed",
                                             reason="error", failure="x", started_at=call.started_at)
    assert not await lifecycle.flush_call(call_db, call.id, {"transcript": "late"}, [])
    row = await call_of(call_db, session.id)
    assert row is not None and (row.status, row.end_reason, row.transcript) == ("completed", "goodbye", "Caller: hi")
    assert (await session_row(call_db, session.id)).status == "completed"
    async with call_db.session() as s:
        assert len((await s.scalars(select(Job).where(Job.kind == "summary"))).all()) == 1


async def test_the_claim_starts_the_call_linked_to_the_callers_customer(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    async with call_db.session() as s, s.begin():
        s.add(Customer(business_id=business.id, name="Lee", phone="+15550104444"))
    _known, known_token = await lifecycle.offer_twilio_session(call_db, ISSUER, business, call_sid="CA" + "5" * 32,
                                                              caller_phone="+15550104444") or (None, "")
    stranger, stranger_token = await lifecycle.offer_twilio_session(
        call_db, ISSUER, business, call_sid="CA" + "6" * 32, caller_phone="+15550109999") or (None, "")
    _s, call = await lifecycle.claim_call(call_db, ISSUER, known_token, channel="twilio", call_sid="CA" + "5" * 32)
    async with call_db.session() as s:
        lee = await s.scalar(select(Customer.id).where(Customer.phone == "+15550104444"))
    assert call.customer_id == lee and call.started_at and call.caller_phone == "+15550104444"
    _s, other = await lifecycle.claim_call(call_db, ISSUER, stranger_token, channel="twilio")
    assert other.customer_id is None and stranger is not None
    assert (await session_row(call_db, stranger.id)).status == "active"


async def test_a_token_on_the_wrong_kind_of_socket_is_refused_and_burnt(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    session, token = await lifecycle.offer_session(call_db, ISSUER, business, "browser")
    with pytest.raises(TokenRejected, match="mismatch"):
        await lifecycle.claim_call(call_db, ISSUER, token, channel="twilio")
    row = await session_row(call_db, session.id)
    assert (row.status, row.failure_reason) == ("failed", "a phone stream presented a browser call's token")
    assert await call_of(call_db, session.id) is None
    with pytest.raises(TokenRejected, match="used"):
        await lifecycle.claim_call(call_db, ISSUER, token, channel="browser")


async def test_a_retried_webhook_is_reoffered_until_claimed(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    first = await lifecycle.offer_twilio_session(call_db, ISSUER, business, call_sid="CA" + "2" * 32,
                                                 caller_phone=None)
    again = await lifecycle.offer_twilio_session(call_db, ISSUER, business, call_sid="CA" + "2" * 32,
                                                 caller_phone=None)
    assert first and again and first[0].id == again[0].id and first[1] != again[1]
    with pytest.raises(TokenRejected):
        await lifecycle.claim_call(call_db, ISSUER, first[1], channel="twilio")  # the first token stopped working
    await lifecycle.claim_call(call_db, ISSUER, again[1], channel="twilio", call_sid="CA" + "2" * 32)
    assert await lifecycle.reoffer_session(call_db, ISSUER, business, "CA" + "2" * 32) is None


async def test_fail_unstarted_closes_the_session_and_any_started_call(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    session, token = await lifecycle.offer_session(call_db, ISSUER, business, "browser")
    await lifecycle.claim_call(call_db, ISSUER, token, channel="browser")
    assert await lifecycle.fail_unstarted(call_db, session.id, "caller context failed")
    row = await session_row(call_db, session.id)
    assert (row.status, row.failure_reason) == ("failed", "caller context failed") and row.ended_at
    call = await call_of(call_db, session.id)
    assert call is not None and (call.status, call.end_reason) == ("failed", "setup_failed") and call.ended_at
    assert not await lifecycle.fail_unstarted(call_db, session.id, "again")


async def test_finalise_without_stream_and_a_late_stream(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    offered = await lifecycle.offer_twilio_session(call_db, ISSUER, business, call_sid="CA" + "3" * 32,
                                                   caller_phone=None)
    assert offered
    closed = await lifecycle.finalise_without_stream(call_db, "CA" + "3" * 32, "busy")
    assert closed is not None and await lifecycle.finalise_without_stream(call_db, "CA" + "3" * 32, "busy") is None
    with pytest.raises(TokenRejected, match="used"):
        await lifecycle.claim_call(call_db, ISSUER, offered[1], channel="twilio")
    call = await call_of(call_db, offered[0].id)
    assert call is not None and (call.status, call.end_reason) == ("failed", "twilio_busy")


async def test_reap_stale_and_close_unclaimed(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    session, token = await lifecycle.offer_session(call_db, ISSUER, business, "browser")
    _claimed, call = await lifecycle.claim_call(call_db, ISSUER, token, channel="browser")
    unclaimed, _ = await lifecycle.offer_session(call_db, ISSUER, business, "browser")
    later = datetime.now(UTC) + lifecycle.STALE_AFTER + lifecycle.UNCLAIMED_AFTER
    assert await lifecycle.reap_stale_calls(call_db, now=later) == 1
    assert await lifecycle.reap_stale_calls(call_db, now=later) == 0
    assert (await call_of(call_db, session.id)).end_reason == "interrupted"  # type: ignore[union-attr]
    assert await lifecycle.close_unclaimed(call_db, now=later + timedelta(seconds=1)) == 1
    assert (await session_row(call_db, unclaimed.id)).failure_reason == "the caller never connected"
    assert call.id


# -- a claimed session whose call never starts ------------------------------------------------------------------
def no_realtime_connection_open(double: OpenAIDouble) -> None:
    deadline = time.monotonic() + 5
    while any(not s.closed.is_set() for s in double.realtime_sessions) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(s.closed.is_set() for s in double.realtime_sessions)


async def claimed_prewarmed(db: Database, runtime: CallRuntime, double: OpenAIDouble) -> tuple[Session, Call]:
    _user, business = await create_owner(db)
    session, token = await lifecycle.offer_session(db, runtime.issuer, business, "browser")
    runtime.prewarm(session.id)
    await asyncio.to_thread(double.wait_for_session, 0, 5.0)  # the prewarmed connection is open
    return await lifecycle.claim_call(db, runtime.issuer, token, channel="browser", session_id=session.id)


@pytest.mark.parametrize("where", ["business", "caller_context"])
async def test_an_error_between_claim_and_a_running_call_closes_session_and_link(
        call_db: Database, call_settings: Any, double: OpenAIDouble, monkeypatch: pytest.MonkeyPatch,
        where: str) -> None:
    runtime = CallRuntime(call_settings, call_db)
    session, started = await claimed_prewarmed(call_db, runtime, double)

    async def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("database went away")

    target = {"business": "app.db.services.BusinessScope.business",
              "caller_context": "app.voice.runtime.caller_context"}[where]
    monkeypatch.setattr(target, boom)
    with pytest.raises(RuntimeError):
        await runtime.build_bridge(session, started, PlaybackTransport())
    row = await session_row(call_db, session.id)
    assert row.status == "failed" and row.ended_at and "could not start (RuntimeError)" in row.failure_reason
    call = await call_of(call_db, session.id)
    assert call is not None and (call.status, call.end_reason) == ("failed", "setup_failed") and call.ended_at
    await asyncio.to_thread(no_realtime_connection_open, double)
    assert not runtime._prewarmed
    await runtime.stop()


async def test_a_cancelled_build_still_closes_session_and_link(call_db: Database, call_settings: Any,
                                                               double: OpenAIDouble,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = CallRuntime(call_settings, call_db)
    session, started = await claimed_prewarmed(call_db, runtime, double)

    async def hang(*_a: Any, **_k: Any) -> Any:
        await asyncio.sleep(60)

    monkeypatch.setattr("app.voice.runtime.caller_context", hang)
    task = asyncio.create_task(runtime.build_bridge(session, started, PlaybackTransport()))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    assert (await session_row(call_db, session.id)).status == "failed"
    await asyncio.to_thread(no_realtime_connection_open, double)
    await runtime.stop()


async def test_abandon_closes_a_claimed_session_and_its_prewarmed_link(call_db: Database, call_settings: Any,
                                                                       double: OpenAIDouble) -> None:
    """What both socket routes do when a call fails before it runs."""
    runtime = CallRuntime(call_settings, call_db)
    session, _call = await claimed_prewarmed(call_db, runtime, double)
    await runtime.abandon(session.id, "the call failed (RuntimeError)")
    row = await session_row(call_db, session.id)
    assert (row.status, row.failure_reason) == ("failed", "the call failed (RuntimeError)")
    await asyncio.to_thread(no_realtime_connection_open, double)
    await runtime.stop()
