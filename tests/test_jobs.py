"""The durable job queue (app.jobs): keyed enqueue is idempotent inside the caller's transaction, a job
runs on one worker, failures back off and give up, `Permanent` fails at once, a handler may complete its
job in its own transaction, and kinds a worker doesn't know are left for one that does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.db.engine import Database
from app.db.models import Job
from app.jobs import JobQueue, Permanent, complete, enqueue, job_id_for
from app.settings import Settings
from tests.conftest import migrated_database


@pytest.fixture
async def db(settings: Settings) -> Database:  # type: ignore[misc]
    async with migrated_database(settings) as database:
        yield database


async def _job(db: Database, job_id: object) -> Job:
    async with db.session() as s:
        job = await s.get(Job, job_id)
    assert job is not None
    return job


async def test_a_keyed_job_is_enqueued_once(db: Database) -> None:
    for _ in range(3):
        async with db.session() as s, s.begin():
            job_id = await enqueue(s, "notify", {"to": "owner"}, key="notify:call-1:email")
    assert job_id == job_id_for("notify:call-1:email")
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Job)) == 1


async def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.session() as s, s.begin():
            await enqueue(s, "notify", {}, key="k")
            raise RuntimeError("the event's own write failed")
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Job)) == 0


async def test_runs_once_then_done(db: Database) -> None:
    seen: list[dict[str, object]] = []

    async def handler(job: Job) -> None:
        seen.append(job.payload)

    jobs = JobQueue(db)
    jobs.register("notify", handler)
    async with db.session() as s, s.begin():
        job_id = await enqueue(s, "notify", {"n": 1})
    assert await jobs.run_one() is True
    assert await jobs.run_one() is False
    assert seen == [{"n": 1}] and (await _job(db, job_id)).status == "done"


async def test_one_claim_across_workers(db: Database) -> None:
    async with db.session() as s, s.begin():
        await enqueue(s, "notify", {})
    workers = [JobQueue(db) for _ in range(4)]
    for w in workers:
        w.register("notify", lambda job: asyncio.sleep(0))
    claims = await asyncio.gather(*(w.claim() for w in workers))
    assert len([c for c in claims if c is not None]) == 1


async def test_failures_back_off_then_give_up_and_permanent_fails_at_once(db: Database) -> None:
    async def flaky(job: Job) -> None:
        raise ConnectionRefusedError("smtp down")

    async def hopeless(job: Job) -> None:
        raise Permanent("no such message")

    jobs = JobQueue(db)
    jobs.register("flaky", flaky, max_attempts=2)
    jobs.register("hopeless", hopeless)
    async with db.session() as s, s.begin():
        flaky_id = await enqueue(s, "flaky", {})
        hopeless_id = await enqueue(s, "hopeless", {})
    assert await jobs.run_one() and await jobs.run_one()
    flaky_job, hopeless_job = await _job(db, flaky_id), await _job(db, hopeless_id)
    assert flaky_job.status == "pending" and flaky_job.run_after > datetime.now(UTC)
    assert "ConnectionRefusedError" in (flaky_job.last_error or "")
    assert hopeless_job.status == "failed" and hopeless_job.attempts == 1
    assert await jobs.run_one() is False  # the retry is not due yet
    async with db.session() as s, s.begin():
        row = await s.get(Job, flaky_id)
        assert row is not None
        row.run_after = datetime.now(UTC)
    assert await jobs.run_one() is True
    assert (await _job(db, flaky_id)).status == "failed"


async def test_a_handler_can_complete_its_job_with_its_effect(db: Database, tmp_path: Path) -> None:
    async def handler(job: Job) -> None:
        async with db.session() as s, s.begin():
            await complete(s, job)

    jobs = JobQueue(db)
    jobs.register("atomic", handler)
    async with db.session() as s, s.begin():
        job_id = await enqueue(s, "atomic", {})
    assert await jobs.run_one() is True
    job = await _job(db, job_id)
    assert job.status == "done" and job.attempts == 1


async def test_unknown_kinds_are_left_alone(db: Database) -> None:
    jobs = JobQueue(db)
    jobs.register("mine", lambda job: asyncio.sleep(0))
    async with db.session() as s, s.begin():
        other = await enqueue(s, "theirs", {})
    assert await jobs.run_one() is False
    assert (await _job(db, other)).status == "pending"
