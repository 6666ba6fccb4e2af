"""Call starts in a burst from two processes' engines on one database (issue 10): every transition of every
call lands, once, and no writer is refused with "database is locked". The 100-starts-in-2-s run over real
servers is `bench/bench_greeting.py --calls 100 --within 2 --instances 2` (bench/README.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Call, Job, Session
from app.settings import Settings
from app.voice import lifecycle
from app.voice.tokens import TokenIssuer
from tests.support.data import create_owner

ISSUER = TokenIssuer(("burst-secret-0123456789abcdef0123",))
STARTS = 40


async def test_a_burst_of_call_starts_on_two_engines_all_start_and_end_once(
    any_db: Database, db_mode_settings: Settings
) -> None:
    other = Database(db_mode_settings)  # a second engine on the same database: what a second process holds
    try:
        _user, business = await create_owner(any_db, phone_number="+15550009000")

        async def one(k: int) -> None:
            webhook, stream = (any_db, other) if k % 2 else (other, any_db)  # the two halves on different engines
            call_sid = f"CA{k:032x}"
            session, token = await lifecycle.offer_twilio_session(webhook, ISSUER, business, call_sid=call_sid,
                                                                  caller_phone=f"+1555700{k:04d}")
            _claimed, call = await lifecycle.claim_call(stream, ISSUER, token, channel="twilio", call_sid=call_sid)
            await lifecycle.flush_call(stream, call.id, {"transcript": "Caller: hi"}, [])
            assert await lifecycle.finalise_call(stream, call.id, session.id, {}, [], status="completed",
                                                 reason="goodbye", failure=None, started_at=datetime.now(UTC))

        await asyncio.gather(*(one(k) for k in range(STARTS)))
        async with any_db.session() as s:
            sessions = await s.scalar(select(func.count()).select_from(Session).where(Session.status == "completed"))
            ended = await s.scalar(select(func.count()).select_from(Call).where(Call.ended_at.is_not(None)))
            summaries = await s.scalar(select(func.count()).select_from(Job).where(Job.kind == "summary"))
        assert sessions == ended == summaries == STARTS
    finally:
        await other.dispose()
