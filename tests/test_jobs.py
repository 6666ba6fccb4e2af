"""The durable job queue (app.jobs): keyed enqueue is idempotent inside the caller's transaction, a job
runs on one worker, failures back off and give up, `Permanent` fails at once, a handler may complete its
job in its own transaction, and kinds a worker doesn't know are left for one that does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
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


async def test_a_claimed_job_is_left_to_its_worker_for_its_kinds_lease_then_taken_again(db: Database) -> None:
    """A worker SIGKILLed mid-run can't settle its job: the next claim waits out the kind's lease, not longer."""
    async with db.session() as s, s.begin():
        send_id = await enqueue(s, "notify", {})
        summary_id = await enqueue(s, "summary", {})
    dead = JobQueue(db)
    dead.register("notify", lambda job: asyncio.sleep(0), lease=timedelta(seconds=45))
    dead.register("summary", lambda job: asyncio.sleep(0))
    claimed_at = datetime.now(UTC)
    assert {(await dead.claim()).id, (await dead.claim()).id} == {send_id, summary_id}  # type: ignore[union-attr]
    leases = {job_id: _aware((await _job(db, job_id)).run_after) - claimed_at for job_id in (send_id, summary_id)}
    assert timedelta(seconds=44) < leases[send_id] < timedelta(seconds=47)
    assert timedelta(minutes=4, seconds=59) < leases[summary_id] < timedelta(minutes=5, seconds=2)
    assert await JobQueue(db).claim() is None  # (no kinds) and nothing is due for anyone yet
    async with db.session() as s, s.begin():  # 46 s later: the send's lease is over, the summary's is not
        for job in await s.scalars(select(Job)):
            job.run_after = _aware(job.run_after) - timedelta(seconds=46)
    heir = JobQueue(db)
    heir.register("notify", lambda job: asyncio.sleep(0), lease=timedelta(seconds=45))
    heir.register("summary", lambda job: asyncio.sleep(0))
    again = await heir.claim()
    assert again is not None and again.id == send_id and again.attempts == 2
    assert await heir.claim() is None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
