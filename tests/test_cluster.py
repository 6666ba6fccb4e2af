"""Two instances of the real service on one database (issue 10, item 3): an SQLite file on one host, and one
Hrana (libSQL over HTTP) server as Turso would be. Each Twilio webhook goes to instance A and its media stream
to instance B, as a load balancer may split them. One module-scoped pair per database, several checks each.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from app.dashboard.sessions import LIVE_LIST_SESSIONS
from app.db.engine import Database
from app.db.models import Appointment, Call, CallEvent, Job, Session
from app.settings import load_settings
from tests.doubles.twilio_double import TwilioDouble
from tests.support.cluster import Cluster, run_cluster
from tests.support.data import seed_owner
from tests.support.dates import next_weekday
from tests.support.phone_world import owner_client
from tests.support.server import phone_env
from tests.support.waiting import wait_until
from tests.test_twilio_calls import DecidingOpenAIDouble, books_own_slot, short_utterance

SALON = "+15550004000"
CALLS = 20
TURSO_TOKEN = "cluster-turso-token"


@dataclass
class Pair:
    cluster: Cluster
    openai: DecidingOpenAIDouble
    twilio: TwilioDouble
    business_id: UUID
    owner_id: UUID

    def database(self) -> Database:
        return Database(load_settings(self.cluster.env))


async def _seed(env: dict[str, str]) -> tuple[UUID, UUID]:
    owner, business = await seed_owner(env, name="Two Instance Salon", phone_number=SALON,
                                       greeting="Thanks for calling.")
    return business.id, owner.id


@pytest.fixture(scope="module", params=["sqlite", "libsql"])
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    data_dir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    with ExitStack() as stack:
        openai = stack.enter_context(DecidingOpenAIDouble(api_key="test-key"))
        twilio = stack.enter_context(TwilioDouble())
        env = phone_env(data_dir, openai, twilio)
        if request.param == "libsql":
            from tests.doubles.hrana_server import HranaServer

            hrana = stack.enter_context(HranaServer(data_dir / "remote.db", auth_token=TURSO_TOKEN))
            env.update(DATABASE_URL=hrana.database_url, TURSO_AUTH_TOKEN=TURSO_TOKEN)
        cluster = stack.enter_context(run_cluster(env))
        business_id, owner_id = asyncio.run(_seed(cluster.env))
        twilio.status_callback_url = cluster.a.url + "/twilio/status"
        yield Pair(cluster, openai, twilio, business_id, owner_id)
        logs = cluster.logs()
        assert "Traceback" not in logs, logs[-5000:]
        assert "database is locked" not in logs


async def test_calls_whose_webhook_and_stream_land_on_different_instances_greet_book_and_end_once(
    pair: Pair,
) -> None:
    openai, twilio = pair.openai, pair.twilio
    first = next_weekday(date.today() + timedelta(days=1))
    days = (first, next_weekday(first))
    callers = [f"+1555610{k:04d}" for k in range(CALLS)]
    # Ten half-hour slots a day inside opening hours, on two days: each caller books a slot of their own.
    slot_of = {phone: f"{days[k // 10].isoformat()}T{9 + k % 10 // 2:02d}:{(k % 2) * 30:02d}"
               for k, phone in enumerate(callers)}
    openai.decide = books_own_slot(slot_of)
    sessions_before = len(openai.realtime_sessions)
    stream_b = pair.cluster.b.url.replace("http://", "ws://") + "/twilio/media"
    placed = await asyncio.gather(*(twilio.place_call(pair.cluster.a.url + "/twilio/voice", to=SALON, from_=p)
                                    for p in callers))
    assert all(answer.stream_url for _call, answer in placed)
    # The balancer sends every stream to B: the token was signed by A and is claimed on B.
    streams = await asyncio.gather(*(twilio.open_stream(call, dataclasses.replace(answer, stream_url=stream_b))
                                     for call, answer in placed))
    mine = lambda: openai.realtime_sessions[sessions_before:]  # noqa: E731
    # Every call is greeted; A's prewarmed links that no stream took are closed, not left to idle.
    await wait_until(lambda: sum(1 for log in mine() if log.sent_of_type("response.done")) >= CALLS, timeout=30)
    await wait_until(lambda: all(s.marks_returned and not s.playing for s in streams), timeout=20)

    # The owner watching on A sees the calls B is bridging: the live view reads the shared database.
    db = pair.database()
    try:
        async with db.session() as s:
            session_ids = {str(i) for i in await s.scalars(select(Session.id).where(
                Session.twilio_call_sid.in_([call.sid for call, _a in placed])))}
    finally:
        await db.dispose()
    async with owner_client(pair.cluster.env, pair.owner_id, timeout=30) as owner:
        live = await owner.get(pair.cluster.a.url + "/sessions/live")
    assert live.status_code == 200
    assert sum(1 for sid in session_ids if f"/sessions/{sid}" in live.text) == min(CALLS, LIVE_LIST_SESSIONS)

    for k in range(CALLS):
        openai.realtime.caller(f"Please book me in, caller {k}.")
    for _ in range(CALLS):
        openai.realtime.tool("getNextResponseFromSupervisor", {"relevantContextFromLastUserMessage": "book"},
                             say_first="One moment.")
    for _ in range(CALLS):
        openai.realtime.say_from_tool_output()
    ask = short_utterance("book")
    await asyncio.gather(*(s.speak(ask) for s in streams))
    used = [log for log in mine() if log.received_of_type("response.create")]
    # Greeting, "One moment.", the supervisor's answer: three responses done on every call's session.
    await wait_until(lambda: all(len(log.sent_of_type("response.done")) >= 3 for log in used), timeout=60)
    for k in range(CALLS):
        openai.realtime.caller(f"Thanks, goodbye from caller {k}.")
    for _ in range(CALLS):
        openai.realtime.tool("end_call", {}, say_first="Goodbye!")
    bye = short_utterance("bye")
    await asyncio.gather(*(s.speak(bye) for s in streams))
    await wait_until(lambda: all(twilio.hang_ups(call.sid) for call, _a in placed), timeout=40)
    await asyncio.gather(*(asyncio.wait_for(s.closed.wait(), 15) for s in streams))

    db = pair.database()
    try:
        async def summaries_done() -> list[Job]:
            async with db.session() as s:
                return list(await s.scalars(select(Job).where(Job.kind == "summary")))

        for _ in range(200):
            jobs = await summaries_done()
            if len(jobs) >= CALLS and all(j.status == "done" for j in jobs):
                break
            await asyncio.sleep(0.2)
        async with db.session() as s:
            calls = list(await s.scalars(select(Call).where(Call.caller_phone.in_(callers))))
            events = list(await s.scalars(select(CallEvent).where(CallEvent.call_id.in_([c.id for c in calls]))))
            bookings = list((await s.scalars(select(Appointment).where(
                Appointment.call_id.in_([c.id for c in calls])))).unique())
    finally:
        await db.dispose()

    assert len(calls) == CALLS
    for call in calls:
        assert call.status == "completed" and call.end_reason == "goodbye", (call.caller_phone, call.end_reason)
        assert [e.text for e in events if e.call_id == call.id].count("call ended: goodbye") == 1
        assert f"Booked for {call.caller_phone}" in call.transcript
        assert sum(1 for b in bookings if b.call_id == call.id) == 1
    # Both instances run a job worker on the one database: each call's summary ran once, on one of them.
    assert len(jobs) == CALLS and all(j.status == "done" and j.attempts == 1 for j in jobs)
    summaries = [r for r in openai.response_requests if r.get("model") == "gpt-4.1-mini"]
    assert len(summaries) == CALLS
    # Each stream connected on B, and B's own connect served the call (started once its claim succeeded, beside
    # the set-up); A's prewarmed links, which no stream took, were closed once B had claimed their sessions, well
    # before their 30 s time-to-live.
    assert len(mine()) == 2 * CALLS
    assert sum(1 for log in mine() if log.received_of_type("response.create")) == CALLS
    await wait_until(lambda: all(log.closed.is_set() for log in mine()), timeout=20)


def test_a_sign_in_rate_limit_hit_on_one_instance_holds_on_the_other(pair: Pair) -> None:
    a, b = pair.cluster.a.url, pair.cluster.b.url
    with httpx.Client(timeout=30) as http:
        statuses = [http.get((a if k % 2 else b) + "/auth/login").status_code for k in range(30)]
        assert statuses == [200] * 30
        refused_a, refused_b = http.get(a + "/auth/login"), http.get(b + "/auth/login")
        assert refused_a.status_code == 429 and refused_b.status_code == 429
        assert refused_b.headers["ratelimit-remaining"] == "0"
        assert http.get(b + "/health").status_code == 200  # only the sign-in routes are limited
