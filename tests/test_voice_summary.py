"""Summary jobs (a kind of app.jobs): kept in the database, claimed by one worker at a time, retried with
backoff, and picked up again after a restart (including a job whose worker died mid-run)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from app.db.engine import Database
from app.db.models import Call, Job, Session
from app.jobs import JobQueue
from app.settings import Settings
from app.voice.realtime import openai_client
from app.voice.runtime import CallRuntime
from app.voice.summary import MAX_ATTEMPTS, Summaries
from tests.doubles.openai_double import OpenAIDouble
from tests.support.data import create_owner

pytest_plugins = ("tests.support.voice_fixtures",)


async def ended_call(db: Database, transcript: str, **job: Any) -> tuple[Call, Job]:
    _user, business = await create_owner(db)
    now = datetime.now(UTC)
    async with db.session() as s, s.begin():
        session = Session(business_id=business.id, channel="browser", status="completed")
        s.add(session)
        await s.flush()
        call = Call(session_id=session.id, business_id=business.id, started_at=now, ended_at=now,
                    status="completed", transcript=transcript, cost_usd=0.01)
        s.add(call)
        await s.flush()
        row = Job(kind="summary", payload={"call_id": str(call.id)}, run_after=job.pop("run_after", now), **job)
        s.add(row)
    return call, row


def worker(settings: Settings, db: Database) -> JobQueue:
    jobs = JobQueue(db)
    Summaries(db, settings, lambda: openai_client(settings, max_retries=0)).register(jobs)
    return jobs


async def reload(db: Database, call: Call, job: Job) -> tuple[Call, Job]:
    # The job first: pysqlite runs each SELECT in its own implicit transaction, so reading the call first
    # could see it before the worker's commit and the job after it. The worker commits both together.
    async with db.session() as s:
        j = await s.get(Job, job.id)
        c = await s.get(Call, call.id)
    assert c is not None and j is not None
    return c, j


async def test_pending_jobs_run_at_start_up(call_settings: Settings, call_db: Database,
                                           double: OpenAIDouble) -> None:
    call, job = await ended_call(call_db, "Caller: I'd like a haircut on Friday.\nAgent: Booked for ten.")
    runtime = CallRuntime(call_settings, call_db)  # a fresh process finds the job left by the last one
    await runtime.start()
    try:
        for _ in range(100):
            call, job = await reload(call_db, call, job)
            if job.status == "done":
                break
            await asyncio.sleep(0.05)
    finally:
        await runtime.stop()
    assert job.status == "done" and call.summary == "Summary: I'd like a haircut on Friday."
    request = double.response_requests[0]
    assert request["model"] == "gpt-4.1-mini" and "Booked for ten" in request["input"][0]["content"]
    assert call.usage["summary"]["text_output"] > 0 and call.cost_usd > 0.01


async def test_one_claim_per_job_across_workers(call_settings: Settings, call_db: Database,
                                                double: OpenAIDouble) -> None:
    _call, job = await ended_call(call_db, "Caller: hello")
    claims = await asyncio.gather(*(worker(call_settings, call_db).claim() for _ in range(4)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].id == job.id and won[0].status == "running" and won[0].attempts == 1


async def test_failures_retry_with_backoff_then_give_up(call_settings: Settings, call_db: Database,
                                                        double: OpenAIDouble) -> None:
    double.responses.for_model("gpt-4.1-mini").error(500)
    call, job = await ended_call(call_db, "Caller: hello")
    w = worker(call_settings, call_db)
    assert await w.run_one() is True
    call, job = await reload(call_db, call, job)
    assert job.status == "pending" and job.attempts == 1 and "InternalServerError" in (job.last_error or "")
    assert job.run_after > datetime.now(UTC)
    assert await w.run_one() is False  # not due yet
    # Make it due, fail it until the last attempt.
    async with call_db.session() as s, s.begin():
        await s.execute(update(Job).where(Job.id == job.id).values(run_after=datetime.now(UTC),
                                                                   attempts=MAX_ATTEMPTS - 1))
    double.responses.for_model("gpt-4.1-mini").error(500)
    assert await w.run_one() is True
    call, job = await reload(call_db, call, job)
    assert job.status == "failed" and call.summary is None


async def test_a_job_whose_worker_died_is_taken_again_after_its_lease(
    call_settings: Settings, call_db: Database, double: OpenAIDouble
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    call, job = await ended_call(call_db, "Caller: is anyone there?", status="running", attempts=1, run_after=past)
    assert await worker(call_settings, call_db).run_one() is True
    call, job = await reload(call_db, call, job)
    assert job.status == "done" and job.attempts == 2 and call.summary == "Summary: is anyone there?"


async def test_a_call_without_conversation_needs_no_model(call_settings: Settings, call_db: Database,
                                                          double: OpenAIDouble) -> None:
    call, job = await ended_call(call_db, "")
    assert await worker(call_settings, call_db).run_one() is True
    call, job = await reload(call_db, call, job)
    assert job.status == "done" and call.summary == "No conversation took place."
    assert double.response_requests == []
