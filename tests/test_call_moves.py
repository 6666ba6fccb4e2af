"""Deploys that cut no call (issue 11 item 4): two instances of the real service on one database behind a
loopback load balancer; five phone calls live on A; A is drained and stopped; every call carries on on B.

Twilio, OpenAI and the balancer are the doubles in tests/ (the Twilio double follows the REST redirect to the
new `<Connect><Stream>` the way Twilio does). One module-scoped world: two servers are dear on a small box.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Appointment, Call, CallEvent, CallMove, Job, Session
from app.settings import load_settings
from app.voice.lifecycle import STALE_AFTER, reap_stale_calls
from tests.doubles.openai_double import RealtimeSessionLog
from tests.doubles.twilio_double import DoubleCall, MediaStream, TwilioDouble
from tests.support.balancer import LoadBalancer
from tests.support.data import seed_owner
from tests.support.dates import next_weekday
from tests.support.server import RunningServer, phone_env, run_server
from tests.support.waiting import wait_until
from tests.test_twilio_calls import (
    PHONE_IN_FACTS,
    DecidingOpenAIDouble,
    all_ask_to_book,
    books_own_slot,
    short_utterance,
)

SALON_NUMBER = "+15550003000"
OPERATOR_TOKEN = "operator-token-moves-0123456789"
@dataclass
class Pair:
    a: RunningServer
    b: RunningServer
    balancer: LoadBalancer
    openai: DecidingOpenAIDouble
    twilio: TwilioDouble
    env: dict[str, str]
    business_id: UUID
    a_stopper: Any

    def database(self) -> Database:
        return Database(load_settings(self.env))


async def _seed(env: dict[str, str]) -> UUID:
    _owner, salon = await seed_owner(env, name="Mo's Salon", phone_number=SALON_NUMBER,
                                     greeting="Thanks for calling Mo's Salon.")
    return salon.id


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    data_dir = tmp_path_factory.mktemp("call-moves")
    with DecidingOpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, LoadBalancer() as balancer:
        # GRANIAN_RESPAWN_FAILED_WORKERS: a worker that dies is replaced (the SIGKILL test below).
        env = phone_env(data_dir, openai, twilio, PUBLIC_BASE_URL=balancer.url, OPERATOR_TOKEN=OPERATOR_TOKEN,
                        DRAIN_TIMEOUT_SECONDS="60", GRANIAN_RESPAWN_FAILED_WORKERS="true",
                        GRANIAN_RESPAWN_INTERVAL="0.5")
        a_context = run_server(env)
        a = a_context.__enter__()
        try:
            with run_server(env) as b:
                balancer.backends = [a.url, b.url]  # A takes the calls while it is healthy
                twilio.status_callback_url = balancer.url + "/twilio/status"
                business_id = asyncio.run(_seed(env))
                yield Pair(a, b, balancer, openai, twilio, env, business_id, a_context)
                assert "Traceback" not in b.log(), b.log()[-5000:]
        finally:
            a_context.__exit__(None, None, None)
        assert "Traceback" not in a.log(), a.log()[-5000:]


def own_turns(log: RealtimeSessionLog) -> list[str]:
    lines = []
    for event in list(log.sent):
        if event["type"] == "conversation.item.input_audio_transcription.completed" and event["transcript"].strip():
            lines.append("Caller: " + event["transcript"].strip())
        elif event["type"] == "response.output_audio_transcript.done" and event["transcript"].strip():
            lines.append("Agent: " + event["transcript"].strip())
    return lines


def output_tokens(log: RealtimeSessionLog) -> int:
    return sum(int(((e.get("response") or {}).get("usage") or {}).get("output_tokens") or 0)
               for e in log.sent_of_type("response.done"))


def produced_ms(log: RealtimeSessionLog) -> float:
    return sum(len(base64.b64decode(e["delta"])) for e in log.sent_of_type("response.output_audio.delta")) / 8


async def all_played(streams: list[MediaStream], logs: list[RealtimeSessionLog]) -> None:
    await wait_until(lambda: all(s.played_ms() >= produced_ms(log) - 1 and not s.playing
                                 for s, log in zip(streams, logs, strict=True)), timeout=20)


async def test_five_live_calls_move_to_the_other_instance_when_one_is_drained_and_stopped(pair: Pair) -> None:
    count = 5
    day = next_weekday(date.today() + timedelta(days=2))
    callers = [f"+1555700{k:04d}" for k in range(count)]
    pair.openai.decide = books_own_slot({phone: f"{day.isoformat()}T{10 + k}:00" for k, phone in enumerate(callers)})
    voice_url = pair.balancer.url + "/twilio/voice"
    pair.balancer.backends = [pair.a.url, pair.b.url]  # A takes the calls while it is healthy
    sockets_before = len(pair.balancer.sockets)

    def sessions_of(phone: str) -> list[RealtimeSessionLog]:
        return [log for log in pair.openai.realtime_sessions
                if PHONE_IN_FACTS.search(log.session_config.get("instructions", "")) is not None
                and PHONE_IN_FACTS.search(log.session_config.get("instructions", "")).group(1) == phone]

    # -- on A: greeted, one exchange each ---------------------------------------------------------------------
    placed = await asyncio.gather(*(pair.twilio.place_call(voice_url, to=SALON_NUMBER, from_=p) for p in callers))
    assert all(answer.stream_url == pair.balancer.url.replace("http", "ws") + "/twilio/media" for _c, answer in placed)
    first_streams = await asyncio.gather(*(pair.twilio.open_stream(call, answer) for call, answer in placed))
    calls: list[DoubleCall] = [call for call, _a in placed]
    await wait_until(lambda: all(len(sessions_of(p)) == 1 and sessions_of(p)[0].sent_of_type("response.done")
                                 for p in callers))
    for k in range(count):
        pair.openai.realtime.caller(f"Hi, I'd like a haircut, this is caller {k}.")
    await asyncio.gather(*(s.speak(short_utterance("hours")) for s in first_streams))
    await wait_until(lambda: all(len(sessions_of(p)[0].sent_of_type("response.done")) >= 2 for p in callers))
    await all_played(first_streams, [sessions_of(p)[0] for p in callers])
    assert all(backend == pair.a.url for _path, backend in pair.balancer.sockets[sockets_before:])

    # -- A is drained: each call is redirected to a fresh stream, which the balancer sends to B -----------------
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    async with httpx.AsyncClient(base_url=pair.a.url, timeout=10) as client:
        drained = await client.post("/ops/drain", headers=auth)
        assert drained.status_code == 202 and drained.json()["live_calls"] == count
        assert (await client.get("/health")).json()["status"] == "draining"
        await wait_until(lambda: all(len(call.streams) == 2 for call in calls), timeout=30)

        async def none_left() -> bool:
            state = (await client.get("/ops/drain", headers=auth)).json()
            return state["live_calls"] == 0 and not state["moving"]

        await wait_until(none_left, timeout=20)
    moved_sockets = [(path, backend) for path, backend in pair.balancer.sockets[sockets_before:]
                     if path == "/twilio/media/moved"]
    assert len(moved_sockets) == count and {backend for _p, backend in moved_sockets} == {pair.b.url}
    for call, old in zip(calls, first_streams, strict=True):
        assert old.closed.is_set() and old.ended_reason == "redirected"
        assert call.ended is None and call.stream is not old and call.stream.stream_sid != old.stream_sid
    # The deploy now stops A: nothing of the calls was left there.
    await asyncio.to_thread(pair.a_stopper.__exit__, None, None, None)
    pair.balancer.backends = [pair.b.url]

    # -- on B: the caller hears the receptionist again, and books -----------------------------------------------
    await wait_until(lambda: all(len(sessions_of(p)) == 2 and sessions_of(p)[1].sent_of_type("response.done")
                                 for p in callers))
    new_streams = [call.stream for call in calls]
    assert all(s is not None for s in new_streams)
    await all_played(new_streams, [sessions_of(p)[1] for p in callers])  # type: ignore[arg-type]
    assert all(len(s.heard) > 0 for s in new_streams)  # type: ignore[union-attr]
    # The silence the caller hears: from Twilio ending the old stream to the first audio on the new one. (The
    # old instance may close its socket as the redirect is applied, before the `stop` frame reaches it.)
    gaps = sorted(min(r.at for r in new.received if r.message.get("event") == "media")  # type: ignore[union-attr]
                  - old.ended_at  # type: ignore[operator]
                  for old, new in zip(first_streams, new_streams, strict=True))
    print(f"move gaps (stop -> first audio on the new instance): {[round(g, 2) for g in gaps]} s")
    for phone in callers:
        restored = [json.dumps(e["item"]) for e in sessions_of(phone)[1].received_of_type("conversation.item.create")]
        # The new session was told the conversation so far, the caller's words and the receptionist's.
        assert any("this is caller" in item for item in restored), restored
        assert any("output_text" in item for item in restored)

    all_ask_to_book(pair.openai.realtime, [f"Can you book me in, caller {k}?" for k in range(count)])
    await asyncio.gather(*(s.speak(short_utterance("book")) for s in new_streams))  # type: ignore[union-attr]
    await wait_until(lambda: all(len(sessions_of(p)[1].sent_of_type("response.done")) >= 4 for p in callers),
                     timeout=40)
    for k in range(count):
        pair.openai.realtime.caller(f"Thanks, goodbye from caller {k}.")
    for _ in range(count):
        pair.openai.realtime.tool("end_call", {}, say_first="Goodbye!")
    await asyncio.gather(*(s.speak(short_utterance("bye")) for s in new_streams))  # type: ignore[union-attr]
    await wait_until(lambda: all(pair.twilio.hang_ups(call.sid) for call in calls), timeout=40)

    # -- one record per call, finalised once, with both halves ---------------------------------------------------
    db = pair.database()
    try:
        async def all_ended() -> bool:
            async with db.session() as s:
                return (await s.scalar(select(func.count()).select_from(Call).where(
                    Call.caller_phone.in_(callers), Call.ended_at.is_not(None)))) == count

        await wait_until(all_ended, timeout=20)
        async with db.session() as s:
            rows = list(await s.scalars(select(Call).where(Call.caller_phone.in_(callers))))
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id.in_([c.id for c in rows]))
                                          .order_by(CallEvent.sequence)))
            moves = list(await s.scalars(select(CallMove).where(CallMove.call_id.in_([c.id for c in rows]))))
            sessions = list(await s.scalars(select(Session).where(Session.caller_phone.in_(callers))))
            bookings = list((await s.scalars(select(Appointment).where(
                Appointment.call_id.in_([c.id for c in rows])))).unique())
            summaries = [job for job in await s.scalars(select(Job).where(Job.kind == "summary"))
                         if job.payload.get("call_id") in {str(c.id) for c in rows}]
    finally:
        await db.dispose()

    assert len(rows) == count and len(sessions) == count and len(summaries) == count
    for row in rows:
        phone = row.caller_phone
        assert phone is not None
        mine = [e for e in events if e.call_id == row.id]
        texts = [e.text for e in mine]
        assert (row.status, row.end_reason) == ("completed", "goodbye"), texts
        assert sum(1 for t in texts if t.startswith("call ended")) == 1
        assert [e.sequence for e in mine] == list(range(1, len(mine) + 1))  # one numbering across both halves
        order = [t for t in texts if t in {"call started", "call moved to another instance",
                                           "call continued on this instance"}]
        assert order == ["call started", "call moved to another instance", "call continued on this instance"]
        assert any(t.startswith("moving the call to another instance") for t in texts)
        [move] = [m for m in moves if m.call_id == row.id]
        assert move.released_at is not None and move.claimed_at is not None and move.cancelled is None
        # Nothing lost: the turns of both realtime sessions, in order, on one transcript.
        a_log, b_log = sessions_of(phone)
        assert row.transcript == "\n".join(own_turns(a_log) + own_turns(b_log)), phone
        assert "this is caller" in row.transcript and f"Booked for {phone}" in row.transcript
        # Both sessions are billed on the one record.
        realtime = row.usage["realtime"]
        billed_out = realtime["text_output"] + realtime["audio_output"] + realtime["text_reasoning"]
        assert billed_out == output_tokens(a_log) + output_tokens(b_log) and output_tokens(a_log) > 0
        [booking] = [b for b in bookings if b.call_id == row.id]
        assert booking.business_id == row.business_id == pair.business_id
    assert all(s.ended_at is not None for s in sessions)
    assert "moved to another instance" in pair.a.log() and "drain: 5 of 5 phone call(s) moved" in pair.a.log()


def worker_of(parent: int) -> int:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    assert children, "granian has no worker process"
    return int(children[0])


async def test_a_worker_killed_with_live_calls_leaves_none_live_and_each_ended_once(pair: Pair) -> None:
    """The short form of bench/bench_fault_kinds.py sigkill: nothing can write the end of a SIGKILLed worker's
    calls, so the housekeeping of the worker that replaces it ends each once (asked at the time it would first
    see them stale, STALE_AFTER after their last write, rather than waiting two minutes)."""
    pair.balancer.backends = [pair.b.url]
    callers = ["+15557710001", "+15557710002"]
    sessions_before = len(pair.openai.realtime_sessions)
    placed = await asyncio.gather(*(pair.twilio.place_call(pair.balancer.url + "/twilio/voice", to=SALON_NUMBER,
                                                           from_=p) for p in callers))
    streams = await asyncio.gather(*(pair.twilio.open_stream(call, answer) for call, answer in placed))
    await wait_until(lambda: len(pair.openai.realtime_sessions) >= sessions_before + 2 and all(
        log.sent_of_type("response.done") for log in pair.openai.realtime_sessions[sessions_before:]))
    killed = worker_of(pair.b.process.pid)
    os.kill(killed, signal.SIGKILL)
    await asyncio.gather(*(asyncio.wait_for(s.closed.wait(), 15) for s in streams))

    async def replaced() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return worker_of(pair.b.process.pid) != killed and (await client.get(pair.b.url + "/health")).is_success
        except (httpx.HTTPError, AssertionError, OSError):
            return False

    await wait_until(replaced, timeout=90, interval=0.3)
    sids = [call.sid for call, _a in placed]
    db = pair.database()
    try:
        async def rows() -> list[Any]:
            async with db.session() as s:
                return list((await s.execute(select(Call.id, Call.ended_at, Call.end_reason, Call.updated_at)
                                             .join(Session, Session.id == Call.session_id)
                                             .where(Session.twilio_call_sid.in_(sids)))).all())

        before = await rows()
        assert len(before) == 2 and all(ended is None for _id, ended, _r, _u in before)  # left live by the kill
        last = max(updated for *_x, updated in before)
        last = last if last.tzinfo else last.replace(tzinfo=UTC)
        assert await reap_stale_calls(db, now=last + STALE_AFTER + timedelta(seconds=1)) == 2
        assert await reap_stale_calls(db, now=last + STALE_AFTER + timedelta(seconds=2)) == 0
        after = await rows()
        async with db.session() as s:
            jobs = await s.scalars(select(Job).where(Job.kind == "summary"))
            summaries = {job.payload.get("call_id") for job in jobs}
    finally:
        await db.dispose()
    assert len(after) == 2 and all(ended is not None and reason == "interrupted" for _i, ended, reason, _u in after)
    assert {str(call_id) for call_id, *_x in after} <= summaries
