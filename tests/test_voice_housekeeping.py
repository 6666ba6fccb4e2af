"""Housekeeping: a call whose process died is ended at its last sign of life (live calls keep writing even
on a quiet line, so they are never mistaken for dead ones), and sessions nobody connected to are closed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Call, Job, Session
from app.settings import Settings
from app.telephony.records import finalise_without_stream
from app.voice.bridge import CallLimits
from app.voice.lifecycle import claim_call
from app.voice.runtime import CallRuntime
from app.voice.sessions import (
    STALE_AFTER,
    UNCLAIMED_AFTER,
    close_unclaimed_sessions,
    finalise_stale_calls,
    open_session,
)
from app.voice.tokens import TokenRejected
from tests.doubles.openai_double import OpenAIDouble
from tests.support.data import create_owner
from tests.support.voice import place_call

pytest_plugins = ("tests.support.voice_fixtures",)


async def add_call(db: Database, business_id: UUID, *, started: datetime, last_write: datetime,
                   ended: datetime | None = None) -> UUID:
    async with db.session() as s, s.begin():
        session = Session(business_id=business_id, channel="browser", status="active", token_used_at=started)
        s.add(session)
        await s.flush()
        call = Call(session_id=session.id, business_id=business_id, started_at=started, ended_at=ended,
                    status="completed" if ended else "in_progress")
        s.add(call)
        await s.flush()
        call.updated_at = last_write
        await s.flush()
        return call.id


async def test_a_call_that_stopped_writing_ends_once_at_its_last_sign_of_life(call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    now = datetime.now(UTC)
    dead = await add_call(call_db, business.id, started=now - timedelta(hours=2),
                          last_write=now - timedelta(minutes=10))
    # Started long ago but still writing: a long call, alive somewhere.
    long_call = await add_call(call_db, business.id, started=now - timedelta(hours=2),
                               last_write=now - timedelta(seconds=30))
    finished = await add_call(call_db, business.id, started=now - timedelta(hours=3),
                              last_write=now - timedelta(hours=2), ended=now - timedelta(hours=2))

    assert await finalise_stale_calls(call_db, now=now) == 1
    assert await finalise_stale_calls(call_db, now=now) == 0
    async with call_db.session() as s:
        calls = {c.id: c for c in await s.scalars(select(Call))}
        jobs = list(await s.scalars(select(Job).where(Job.kind == "summary")))  # calls also queue notifications
        session = await s.get(Session, calls[dead].session_id)
    ended = calls[dead]
    assert (ended.status, ended.end_reason) == ("failed", "interrupted")
    assert ended.ended_at == now - timedelta(minutes=10)
    assert ended.duration_seconds == pytest.approx(110 * 60)
    assert session is not None and session.status == "failed" and session.ended_at == ended.ended_at
    assert "stopped" in (session.failure_reason or "")
    assert calls[long_call].ended_at is None and calls[long_call].status == "in_progress"
    assert calls[finished].status == "completed"
    assert [j.payload["call_id"] for j in jobs] == [str(dead)]


async def test_a_live_call_keeps_writing_on_a_quiet_line(call_settings: Settings, call_db: Database,
                                                         double: OpenAIDouble) -> None:
    double.realtime.say("Hello!")
    limits = CallLimits(heartbeat_seconds=0.2)
    live = await place_call(call_settings, call_db, limits=limits)
    rt = await asyncio.to_thread(double.wait_for_session, 0, 5.0)
    await asyncio.to_thread(rt.wait_for_sent, "response.done", 10.0, 1)
    await live.transport.wait_played(5)

    async def last_write() -> datetime:
        async with call_db.session() as s:
            call = await s.get(Call, live.call_id)
            assert call is not None and call.ended_at is None
            return call.updated_at

    # Nobody speaks: no turn ends, so only the heartbeat writes.
    writes = [await last_write()]
    for _ in range(3):
        await asyncio.sleep(0.5)
        writes.append(await last_write())
    assert writes == sorted(writes) and len(set(writes)) == len(writes)
    # Just inside the staleness window of the latest write, housekeeping leaves the call alone.
    assert await finalise_stale_calls(call_db, now=writes[-1] + STALE_AFTER - timedelta(seconds=1)) == 0
    live.transport.leave("hangup")
    assert (await asyncio.wait_for(live.task, 10)).reason == "caller_hangup"


async def test_sessions_nobody_connected_to_are_closed(call_settings: Settings, call_db: Database) -> None:
    _user, business = await create_owner(call_db)
    runtime = CallRuntime(call_settings, call_db)
    abandoned, abandoned_token = await open_session(call_db, runtime.issuer, business, "browser")
    twilio, _ = await open_session(call_db, runtime.issuer, business, "twilio", call_sid="CA" + "1" * 32)
    recent, recent_token = await open_session(call_db, runtime.issuer, business, "browser")
    now = datetime.now(UTC) + UNCLAIMED_AFTER + timedelta(seconds=1)
    async with call_db.session() as s, s.begin():
        row = await s.get(Session, recent.id)
        assert row is not None
        row.created_at = now - timedelta(minutes=1)

    assert await close_unclaimed_sessions(call_db, now=now) == 2
    assert await close_unclaimed_sessions(call_db, now=now) == 0
    async with call_db.session() as s:
        rows = {r.id: r for r in await s.scalars(select(Session))}
    for closed in (abandoned.id, twilio.id):
        assert rows[closed].status == "failed" and rows[closed].failure_reason == "the caller never connected"
        assert rows[closed].ended_at == now
    assert rows[recent.id].status == "pending" and rows[recent.id].ended_at is None
    # A socket that turns up after all is refused, and Twilio's late status callback adds nothing.
    with pytest.raises(TokenRejected):
        await claim_call(call_db, runtime.issuer, abandoned_token, channel="browser", session_id=abandoned.id)
    assert await finalise_without_stream(call_db, "CA" + "1" * 32, "completed") is None
    claimed, _call = await claim_call(call_db, runtime.issuer, recent_token, channel="browser", session_id=recent.id)
    assert claimed.id == recent.id
