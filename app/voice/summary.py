"""Call summaries, produced after the call by jobs kept in the database.

A job is claimed with a lease: `status=running` and `run_after` pushed into the future, in one conditional
UPDATE, so two workers (two processes, or one restarted) never run the same job at once, and a job whose
worker died is picked up again when its lease runs out. Failures retry with backoff, then give up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from openai import AsyncOpenAI
from sqlalchemy import and_, or_, select, update

from app.background import BackgroundLoop
from app.billing.pricing import cost_usd, from_responses
from app.db.engine import Database
from app.db.models import Call, Job, JobStatus
from app.settings import Settings
from app.voice.recorder import SUMMARY_JOB

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
POLL_SECONDS = 2.0

SUMMARY_INSTRUCTIONS = (
    "Summarise this phone call to a small business for its owner in one or two sentences: who called, what "
    "they wanted, and what was done (bookings with day and time, messages taken, anything left open). "
    "Plain text, no preamble."
)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(600, 5 * 2 ** max(0, attempts - 1)))


class SummaryWorker:
    #: the Job kind this worker runs (a subclass runs another kind through the same claim and retry logic)
    KIND = SUMMARY_JOB
    NAME = "summary-worker"

    def __init__(self, db: Database, settings: Settings,
                 client_factory: Callable[[], AsyncOpenAI] | None = None) -> None:
        self._db = db
        self._settings = settings
        self._client_factory = client_factory
        self._loop = BackgroundLoop(self.NAME, self._run_due, POLL_SECONDS)

    def start(self) -> None:
        self._loop.start()

    def poke(self) -> None:
        """A call just ended: look for work now rather than at the next poll."""
        self._loop.wake()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run_due(self) -> None:
        while await self.run_one():
            if self._loop.stopping:
                return

    async def claim(self) -> Job | None:
        now = datetime.now(UTC)
        claimable = and_(
            Job.kind == self.KIND,
            Job.run_after <= now,
            or_(Job.status == JobStatus.PENDING.value, Job.status == JobStatus.RUNNING.value),
        )
        async with self._db.session() as s:
            candidates = list(await s.scalars(select(Job.id).where(claimable).order_by(Job.run_after).limit(5)))
        for job_id in candidates:
            async with self._db.session() as s, s.begin():
                result = await s.execute(
                    update(Job)
                    .where(Job.id == job_id, claimable)
                    .values(status=JobStatus.RUNNING.value, run_after=now + LEASE, attempts=Job.attempts + 1)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    return await s.get(Job, job_id)
        return None

    async def run_one(self) -> bool:
        """Claim and run one due job; False when there was none."""
        job = await self.claim()
        if job is None:
            return False
        try:
            await self.handle(job)
        except Exception as exc:
            log.warning("%s job %s failed (attempt %d): %r", self.KIND, job.id, job.attempts, exc)
            gave_up = job.attempts >= MAX_ATTEMPTS
            async with self._db.session() as s, s.begin():
                await s.execute(
                    update(Job).where(Job.id == job.id).values(
                        status=JobStatus.FAILED.value if gave_up else JobStatus.PENDING.value,
                        run_after=datetime.now(UTC) + _backoff(job.attempts),
                        last_error=f"{type(exc).__name__}: {exc}"[:1000],
                    )
                )
        return True

    async def handle(self, job: Job) -> None:
        """Run one claimed job; raising retries it later with backoff."""
        await self._summarise(UUID(str(job.payload["call_id"])), job.id)

    async def _done(self, job_id: UUID) -> None:
        async with self._db.session() as s, s.begin():
            await s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.DONE.value, last_error=None))

    async def _summarise(self, call_id: UUID, job_id: UUID) -> None:
        async with self._db.session() as s:
            call = await s.get(Call, call_id)
        if call is None:
            await self._done(job_id)  # the call was deleted: nothing to summarise
            return
        if not call.transcript.strip():
            summary = "No conversation took place" + (f" ({call.end_reason})." if call.end_reason else ".")
            usage_delta = None
        else:
            if self._client_factory is None:
                raise RuntimeError("OpenAI is not configured")
            client = self._client_factory()
            response = await client.responses.create(
                model=self._settings.summary_model,
                instructions=SUMMARY_INSTRUCTIONS,
                input=[{"role": "user", "content": f"Please write a summary of this call.\n\n{call.transcript}"}],
                store=False,
            )
            summary = response.output_text.strip()
            if not summary:
                raise RuntimeError("the summary model returned no text")
            usage_delta = from_responses(response.usage.model_dump()) if response.usage else None
        # The summary, its cost and the job's completion commit together, so a crash in between can't
        # count the summary's usage twice when the job runs again.
        async with self._db.session() as s, s.begin():
            await s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.DONE.value, last_error=None))
            call = await s.get(Call, call_id)
            if call is None:
                return
            call.summary = summary
            if usage_delta is not None:
                cost = cost_usd(self._settings.summary_model, usage_delta, self._settings.price_overrides)
                usage = dict(call.usage or {})
                usage["summary"] = {"model": self._settings.summary_model, **usage_delta.as_dict(), "cost_usd": cost}
                call.usage = usage
                call.input_tokens += usage_delta.input_tokens
                call.output_tokens += usage_delta.output_tokens
                call.cost_usd = round(call.cost_usd + cost, 6)
