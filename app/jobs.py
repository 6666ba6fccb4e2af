"""Durable background work: rows in the `job` table, run by one worker per process, exactly once in effect.

- `enqueue()` adds a job inside the caller's own transaction, so the job exists if and only if the event that
  caused it was committed (an outbox). With a `key`, the job's id is derived from the key, so enqueueing the
  same event twice (a retried webhook, a replayed call ending) inserts it once: `INSERT … ON CONFLICT DO
  NOTHING` on the primary key, which needs no extra column or index.
- A job is claimed with a lease: `status=running` and `run_after` pushed past the lease, in one conditional
  UPDATE, so two workers (two processes, or one restarted) never run the same job at once, and a job whose
  worker died is picked up again when its lease runs out. The lease is the kind's: five minutes unless the
  kind's handler is bounded by shorter timeouts (a notification's send: its lease is what a SIGKILLed worker
  can delay it by).
- A handler that raises is retried with exponential backoff until its kind's `max_attempts`, then the job is
  `failed` with the error kept (visible to the owner where the kind has a page). `Permanent` fails at once.
- A handler that must commit its effect together with the job's completion (so a crash in between can't do
  the effect twice) calls `complete(session, job)` inside its own transaction; otherwise the worker marks the
  job done after the handler returns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session as SyncSession

from app import metrics
from app.background import BackgroundLoop
from app.db.engine import Database
from app.db.models import Job, JobStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
POLL_SECONDS = 2.0
_KEY_NAMESPACE = uuid.UUID("6f1c1f4e-2b7a-4d0e-9a53-6c0b6a9b1d2e")

Handler = Callable[[Job], Awaitable[None]]


class Permanent(Exception):
    """The job can never succeed (bad payload, its subject deleted): fail it now instead of retrying."""


def job_id_for(key: str) -> uuid.UUID:
    """The id a keyed job gets: the same key always names the same row."""
    return uuid.uuid5(_KEY_NAMESPACE, key)


def backoff(attempts: int, base: float = 5.0, cap: float = 600.0) -> timedelta:
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


async def enqueue(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    run_after: datetime | None = None,
) -> uuid.UUID:
    """Add a job in `session`'s transaction; with `key`, a second enqueue of the same key is a no-op."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "kind": kind,
        "payload": payload,
        "status": JobStatus.PENDING.value,
        "attempts": 0,
        "run_after": run_after or now,
        "created_at": now,
        "updated_at": now,
    }
    if key is None:
        job = Job(**values)
        session.add(job)
        await session.flush()
        return job.id
    job_id = job_id_for(key)
    values["id"] = job_id
    await session.execute(insert(Job).values(**values).on_conflict_do_nothing(index_elements=[Job.id]))
    return job_id


async def complete(session: AsyncSession, job: Job) -> None:
    """Mark `job` done inside the handler's own transaction (effect and completion commit together)."""
    await session.execute(
        update(Job).where(Job.id == job.id).values(status=JobStatus.DONE.value, last_error=None)
    )


@dataclass(frozen=True, slots=True)
class JobKind:
    name: str
    handler: Handler
    max_attempts: int = 5
    backoff_base: float = 5.0
    lease: timedelta = LEASE


class JobQueue:
    """Claims and runs due jobs of the registered kinds; `poke()` when a job was just enqueued."""

    def __init__(self, db: Database, poll_seconds: float = POLL_SECONDS) -> None:
        self._db = db
        self._kinds: dict[str, JobKind] = {}
        self._loop = BackgroundLoop("job-worker", self._run_due, poll_seconds)

    def register(self, name: str, handler: Handler, *, max_attempts: int = 5, backoff_base: float = 5.0,
                 lease: timedelta = LEASE) -> None:
        """`lease`: how long a claimed job is left to its worker; it must outlast the handler's longest run."""
        self._kinds[name] = JobKind(name, handler, max_attempts, backoff_base, lease)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def start(self) -> None:
        self._loop.start()

    def poke(self) -> None:
        """Something was just enqueued: look for work now rather than at the next poll."""
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run_due(self) -> None:
        while await self.run_one():
            if self._loop.stopping:
                return
        await self._measure_depth()

    async def _measure_depth(self) -> None:
        async with self._db.session() as s:
            waiting = await s.scalar(
                select(func.count()).select_from(Job).where(
                    Job.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value])
                )
            )
        metrics.jobs_waiting.set(waiting or 0)

    def _claimable(self, now: datetime) -> Any:
        return and_(
            Job.kind.in_(list(self._kinds)),
            Job.run_after <= now,
            or_(Job.status == JobStatus.PENDING.value, Job.status == JobStatus.RUNNING.value),
        )

    async def claim(self) -> Job | None:
        if not self._kinds:
            return None
        now = datetime.now(UTC)
        claimable = self._claimable(now)
        async with self._db.session() as s:
            candidates = list(await s.execute(select(Job.id, Job.kind).where(claimable).order_by(Job.run_after)
                                              .limit(5)))

        def take(s: SyncSession, job_id: uuid.UUID, lease: timedelta) -> Job | None:
            return s.execute(
                update(Job).where(Job.id == job_id, claimable)
                .values(status=JobStatus.RUNNING.value, run_after=now + lease, attempts=Job.attempts + 1)
                .returning(Job).execution_options(synchronize_session=False)
            ).scalar()

        for job_id, kind in candidates:
            lease = self._kinds[kind].lease
            if (job := await self._db.transact(partial(take, job_id=job_id, lease=lease))) is not None:
                return job
        return None

    async def run_one(self) -> bool:
        """Claim and run one due job; False when there was none."""
        job = await self.claim()
        if job is None:
            return False
        kind = self._kinds[job.kind]
        try:
            await kind.handler(job)
        except Exception as exc:
            permanent = isinstance(exc, Permanent)
            gave_up = permanent or job.attempts >= kind.max_attempts
            # The kind and the exception's type only: messages can carry personal data (an SMTP refusal
            # quoting the address, a model error quoting the transcript).
            log.warning("job %s (%s) failed, attempt %d%s: %s", job.id, job.kind, job.attempts,
                        ", giving up" if gave_up else "", type(exc).__name__)
            if gave_up:
                metrics.jobs_failed.labels(job.kind).inc()
            await self._settle(job, JobStatus.FAILED if gave_up else JobStatus.PENDING,
                               error=f"{type(exc).__name__}: {exc}"[:1000],
                               run_after=datetime.now(UTC) + backoff(job.attempts, kind.backoff_base))
            return True
        await self._settle(job, JobStatus.DONE, error=None, run_after=None)
        return True

    async def _settle(self, job: Job, status: JobStatus, *, error: str | None, run_after: datetime | None) -> None:
        # Only while still ours: a handler that completed the job itself already moved it to done, and a job
        # whose lease ran out may have been claimed again (its attempts moved on).
        values: dict[str, Any] = {"status": status.value, "last_error": error}
        if run_after is not None:
            values["run_after"] = run_after
        settle = (update(Job)
                  .where(Job.id == job.id, Job.status == JobStatus.RUNNING.value, Job.attempts == job.attempts)
                  .values(**values))
        await self._db.transact(lambda s: s.execute(settle))
