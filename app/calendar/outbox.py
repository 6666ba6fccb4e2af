"""The durable outbox for calendar work: `Job` rows of kind `calendar.*`, claimed with a lease.

A job row is written in the same transaction as the change it follows (a booking, a push notification), so
the work survives a crash or an unreachable Google. Claiming is a compare-and-set on (status, run_after):
two workers (or two processes) never run one job at once, and a worker that dies mid-job leaves a lease
that expires and lets the job run again. Handlers are idempotent (they read current state). Failures retry
with exponential backoff, capped, and stop after MAX_ATTEMPTS with the last error kept on the row.

When app/jobs.py (the generic worker) lands, these handlers register there under the same kinds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.db.engine import Database
from app.db.models import Job, JobStatus

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 40
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0
BATCH = 20

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, attempts - 1)))


class Outbox:
    def __init__(self, db: Database, handlers: Mapping[str, Handler]) -> None:
        self._db = db
        self._handlers = dict(handlers)

    async def _claim(self) -> list[Job]:
        now = datetime.now(UTC)
        async with self._db.session() as s:
            due = list(
                await s.scalars(
                    select(Job)
                    .where(
                        Job.kind.in_(tuple(self._handlers)),
                        Job.status.in_((JobStatus.PENDING.value, JobStatus.RUNNING.value)),
                        Job.run_after <= now,
                    )
                    .order_by(Job.run_after)
                    .limit(BATCH)
                )
            )
        claimed = []
        for job in due:
            async with self._db.session() as s, s.begin():
                result = await s.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == job.status, Job.run_after == job.run_after)
                    .values(status=JobStatus.RUNNING.value, run_after=now + LEASE, attempts=Job.attempts + 1)
                )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                job.attempts += 1
                claimed.append(job)
        return claimed

    async def run_once(self) -> int:
        """Run the jobs that are due; how many ran."""
        jobs = await self._claim()
        for job in jobs:
            await self._run(job)
        return len(jobs)

    async def _run(self, job: Job) -> None:
        try:
            await self._handlers[job.kind](job.payload)
        except Exception as exc:
            failed = job.attempts >= MAX_ATTEMPTS
            log.warning("job %s (%s) attempt %d failed: %s", job.id, job.kind, job.attempts, type(exc).__name__)
            async with self._db.session() as s, s.begin():
                await s.execute(
                    update(Job).where(Job.id == job.id).values(
                        status=JobStatus.FAILED.value if failed else JobStatus.PENDING.value,
                        run_after=datetime.now(UTC) + backoff(job.attempts),
                        last_error=f"{type(exc).__name__}: {exc}"[:1000],
                    )
                )
            return
        async with self._db.session() as s, s.begin():
            await s.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.DONE.value, last_error=None))
