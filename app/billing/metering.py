"""Usage to Polar and usage warnings, through the durable job queue (app.jobs), never lost to an outage.

- The UPDATE that finalises a call fixes its billable seconds, and the same transaction enqueues one keyed
  job for a billable call (`on_call_finalised`, `polar-usage:{call_id}`); a replayed ending inserts nothing
  new (same key). That transaction holds SQLite's write lock, so billing adds one statement to it, no more.
- `polar-usage` sends one event per call to Polar's `events.ingest` with `external_id` = the call id, so a
  retry after a timeout (the first attempt may have landed) is a duplicate to Polar, not a second charge.
  Retries back off up to ~1 h apart for about a day before the job is marked failed (shown on the billing
  page); a Polar outage delays the report, it never drops it. Only calls on a paid (Polar) plan are sent.
- A call's `overage_minutes` is what it adds past the included minutes, counting the calls that started
  before it in the period: a resent event carries the same numbers.
- The same job first records the 80 % and 100 % warnings, once per period each (a unique row), and in that
  row's transaction queues the owner's email/SMS through the inbox outbox (app.billing.warnings).
- Marking a reported call as spam sends a credit event (`{call_id}:spam`, negative minutes) so Polar's meter
  nets it out; an unreported one is simply never sent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, literal, or_, select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.billing.polar import PolarGateway, PolarRefused
from app.billing.usage import BillingScope, billed_minutes
from app.billing.warnings import record_warnings
from app.db.engine import Database
from app.db.models import Business, Call, Job, JobStatus
from app.jobs import JobQueue, Permanent, complete, enqueue, job_id_for
from app.settings import Settings

log = logging.getLogger(__name__)

USAGE_JOB = "polar-usage"
CREDIT_JOB = "polar-usage-credit"
# 5 s, 10 s, 20 s … capped at the queue's 10 minutes: 30 attempts keep trying for about four hours.
USAGE_MAX_ATTEMPTS = 30


def usage_key(call_id: UUID | str) -> str:
    return f"polar-usage:{call_id}"


async def on_call_finalised(s: AsyncSession, call_id: UUID) -> None:
    """In the call's finalising transaction, after the UPDATE that fixed its billable seconds: enqueue its usage
    report and warning check when it bills anything. One `INSERT … SELECT` (the same keyed, insert-once row
    `app.jobs.enqueue` writes), so the write-locked transaction gets one statement more and no read."""
    now = datetime.now(UTC)
    key = usage_key(call_id)
    row = select(
        literal(job_id_for(key), Job.id.type), literal(USAGE_JOB, Job.kind.type),
        literal({"call_id": str(call_id)}, Job.payload.type), literal(JobStatus.PENDING.value, Job.status.type),
        literal(0, Job.attempts.type), literal(now, Job.run_after.type), literal(now, Job.created_at.type),
        literal(now, Job.updated_at.type),
    ).where(Call.id == call_id, Call.billable_seconds > 0)
    columns = [Job.id, Job.kind, Job.payload, Job.status, Job.attempts, Job.run_after, Job.created_at, Job.updated_at]
    await s.execute(insert(Job).from_select(columns, row).on_conflict_do_nothing())


async def enqueue_spam_credit(s: AsyncSession, call_id: UUID) -> None:
    await enqueue(s, CREDIT_JOB, {"call_id": str(call_id)}, key=f"polar-usage-credit:{call_id}")


async def mark_call_spam(scope: BillingScope, call_id: UUID) -> bool:
    """The owner marks one of the scope's business's calls as spam: it stops counting at once, and a credit job
    (keyed, so a second mark adds none) nets it out of Polar's meter. False when it was marked already."""
    async with scope._sessions() as s, s.begin():
        result = await s.execute(
            update(Call).where(Call.id == call_id, Call.business_id == scope.business_id, Call.is_spam.is_(False))
            .values(is_spam=True)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        await enqueue_spam_credit(s, call_id)
    return True


def _call_id(job: Job) -> UUID:
    try:
        return UUID(str(job.payload["call_id"]))
    except (KeyError, ValueError):
        raise Permanent("the job has no valid call_id") from None


class BillingJobs:
    """The billing room's job kinds, registered on the process's one JobQueue."""

    def __init__(self, db: Database, settings: Settings, polar: PolarGateway) -> None:
        self._db = db
        self._settings = settings
        self._polar = polar

    def register(self, jobs: JobQueue) -> None:
        jobs.register(USAGE_JOB, self.report_usage, max_attempts=USAGE_MAX_ATTEMPTS, backoff_base=5.0)
        jobs.register(CREDIT_JOB, self.report_credit, max_attempts=USAGE_MAX_ATTEMPTS, backoff_base=5.0)

    async def _call(self, call_id: UUID) -> Any:
        async with self._db.session() as s:
            return (await s.execute(
                select(Call.id, Call.business_id, Call.started_at, Call.ended_at, Call.billable_seconds,
                       Call.is_spam, Call.usage_reported, Business.owner_id)
                .join(Business, Business.id == Call.business_id)
                .where(Call.id == call_id)
            )).one_or_none()

    async def _event(self, call: Any, *, credit: bool) -> dict[str, Any] | None:
        scope = BillingScope(self._db.session_maker, call.business_id, self._settings)
        period = await scope.period()
        if period.subscription is None or period.plan.is_trial:
            return None  # the free trial is not billed through Polar
        plan = period.plan
        minutes = billed_minutes(call.billable_seconds, plan)
        before = await self._minutes_before(call, period.start, period.end, plan)
        overage = max(0.0, before + minutes - plan.included_minutes) - max(0.0, before - plan.included_minutes)
        sign = -1 if credit else 1
        return {
            "name": self._settings.polar_usage_event,
            "external_customer_id": str(call.owner_id),
            "external_id": f"{call.id}:spam" if credit else str(call.id),
            "timestamp": (call.ended_at or call.started_at).astimezone(UTC).isoformat(),
            "metadata": {
                "call_id": str(call.id),
                "plan": plan.key,
                "seconds": sign * round(call.billable_seconds, 3),
                "minutes": sign * minutes,
                "overage_minutes": sign * round(min(overage, minutes), 4),
            },
        }

    async def _minutes_before(self, call: Any, start: datetime, end: datetime | None, plan: Any) -> float:
        conditions = [Call.business_id == call.business_id, Call.started_at >= start, Call.billable_seconds > 0,
                      Call.is_spam.is_(False),
                      or_(Call.started_at < call.started_at,
                          and_(Call.started_at == call.started_at, Call.id < call.id))]
        if end is not None:
            conditions.append(Call.started_at < end)
        async with self._db.session() as s:
            seconds = list(await s.scalars(select(Call.billable_seconds).where(*conditions)))
        return sum(billed_minutes(value, plan) for value in seconds)

    async def _send(self, event: dict[str, Any]) -> None:
        if not self._polar.configured:
            raise Permanent("POLAR_ACCESS_TOKEN is not set: usage can't be reported to Polar")
        try:
            inserted, duplicates = await self._polar.ingest([event])
        except PolarRefused as exc:
            raise Permanent(str(exc)) from exc
        log.info("usage event %s sent to Polar: %d inserted, %d duplicate", event["external_id"], inserted, duplicates)

    async def report_usage(self, job: Job) -> None:
        call = await self._call(_call_id(job))
        if call is None or call.is_spam or call.billable_seconds <= 0:
            return
        scope = BillingScope(self._db.session_maker, call.business_id, self._settings)
        # Idempotent across retries and workers: the warning rows are unique, and only their insert notifies.
        await record_warnings(self._db, self._settings, call.business_id, await scope.usage())
        event = await self._event(call, credit=False)
        if event is None:
            return
        await self._send(event)
        async with self._db.write() as s:  # in the writer queue: one for every billable call that ends
            await s.execute(update(Call).where(Call.id == call.id).values(usage_reported=True))
            await complete(s, job)

    async def report_credit(self, job: Job) -> None:
        call = await self._call(_call_id(job))
        if call is None:
            return
        if not call.usage_reported:
            async with self._db.session() as s:
                status = await s.scalar(select(Job.status).where(Job.id == job_id_for(usage_key(call.id))))
            if status in (JobStatus.PENDING.value, JobStatus.RUNNING.value):
                raise RuntimeError("the call's usage report is still pending")  # retried after it settles
            return  # never reported: nothing to take back
        event = await self._event(call, credit=True)
        if event is not None:
            await self._send(event)
