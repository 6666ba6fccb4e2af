"""Metering: which finished calls bill minutes, their usage reaching Polar's events.ingest from the durable job
queue (counted once across retries and outages), the 80 %/100 % warnings, spam, and the answer-with-AI
decision for each plan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select, update

from app.billing.metering import BillingJobs
from app.billing.plans import PlanError, parse_plans
from app.billing.polar import PolarGateway
from app.billing.usage import BillingScope, billable_seconds, billed_minutes
from app.db.engine import Database
from app.db.models import BillingSubscription, Business, Call, CallStatus, EventKind, Job, JobStatus, UsageWarning, User
from app.jobs import JobQueue
from app.settings import Settings
from app.voice.recorder import CallRecorder
from tests.conftest import make_settings, migrated_database
from tests.doubles.polar_double import PolarDouble
from tests.support.billing import PLANS, PRO, STARTER, polar_double, polar_env
from tests.support.dashboard import seed_call
from tests.support.data import create_owner


@dataclass
class Ctx:
    db: Database
    settings: Settings
    polar: PolarDouble
    jobs: JobQueue
    user: User
    business: Business

    async def finished_call(self, seconds: float, *, caller_speaks: bool = True, channel: str = "twilio",
                            started_at: datetime | None = None) -> UUID:
        """A call ended through the call engine's own recorder (its finalising transaction)."""
        started = started_at or datetime.now(UTC) - timedelta(seconds=seconds)
        _session, call = await seed_call(self.db, self.business.id, status="in_progress", started_at=started,
                                         caller_phone="+15551230001" if channel == "twilio" else None)
        recorder = CallRecorder(self.db, call_id=call.id, session_id=call.session_id, business_id=self.business.id,
                                started_at=started)
        if caller_speaks:
            recorder.add(EventKind.CALLER, "Hi, are you open on Saturday?")
        assert await recorder.finalise(CallStatus.COMPLETED, "caller_hung_up")
        return call.id

    async def subscribe(self, product_id: str, *, period_start: datetime | None = None) -> None:
        now = datetime.now(UTC)
        async with self.db.session() as s, s.begin():
            s.add(BillingSubscription(
                business_id=self.business.id, polar_subscription_id=f"sub_{product_id}", product_id=product_id,
                plan=next(p["key"] for p in PLANS if p["product_id"] == product_id), status="active",
                current_period_start=period_start or now - timedelta(days=1),
                current_period_end=now + timedelta(days=29), cancel_at_period_end=False, polar_modified_at=now))

    async def run_jobs(self) -> int:
        """Run every due job now (backoffs skipped: each retry is made due at once)."""
        ran = 0
        for _ in range(20):
            async with self.db.session() as s, s.begin():
                await s.execute(update(Job).where(Job.status == JobStatus.PENDING.value)
                                .values(run_after=datetime.now(UTC) - timedelta(seconds=1)))
            if not await self.jobs.run_one():
                break
            ran += 1
        return ran

    async def job(self, key_prefix: str, call_id: UUID) -> Job | None:
        from app.jobs import job_id_for

        async with self.db.session() as s:
            return await s.get(Job, job_id_for(f"{key_prefix}:{call_id}"))


@pytest.fixture
def polar() -> Iterator[PolarDouble]:
    with polar_double() as double:
        yield double


@pytest.fixture
async def ctx(data_dir: Path, polar: PolarDouble) -> AsyncIterator[Ctx]:
    settings = make_settings(data_dir, **polar_env(polar), FREE_TRIAL_MINUTES="5")
    async with migrated_database(settings) as db:
        user, business = await create_owner(db)
        jobs = JobQueue(db)
        gateway = PolarGateway(settings)
        BillingJobs(db, settings, gateway).register(jobs)
        try:
            yield Ctx(db, settings, polar, jobs, user, business)
        finally:
            await gateway.close()


def test_billable_seconds_rules() -> None:
    assert billable_seconds("twilio", 95.0, caller_spoke=True) == 95.0
    assert billable_seconds("twilio", 14.0, caller_spoke=False) == 0.0  # short and silent: a misdial
    assert billable_seconds("twilio", 14.0, caller_spoke=True) == 14.0
    assert billable_seconds("twilio", 40.0, caller_spoke=False) == 40.0
    assert billable_seconds("browser", 300.0, caller_spoke=True) == 0.0  # test calls are never billed
    assert billable_seconds("twilio", 60.0, caller_spoke=True, answered=False) == 0.0
    per_minute = next(p for p in PLANS if p["key"] == "starter")
    per_second = next(p for p in PLANS if p["key"] == "pro")
    import json

    from app.billing.plans import parse_plans
    starter, pro = parse_plans(json.dumps([per_minute, per_second]))
    assert billed_minutes(61.0, starter) == 2.0 and billed_minutes(60.0, starter) == 1.0
    assert billed_minutes(90.0, pro) == 1.5


async def test_a_finished_call_is_reported_once_even_when_the_answer_was_lost(ctx: Ctx) -> None:
    await ctx.subscribe(PRO)
    call_id = await ctx.finished_call(95.0)
    async with ctx.db.session() as s:
        call = await s.get(Call, call_id)
    assert call is not None and 95.0 <= call.billable_seconds < 97.0
    ctx.polar.drop_next_ingest_answers(1)  # the event lands, the answer is lost: the job must retry
    await ctx.run_jobs()
    job = await ctx.job("polar-usage", call_id)
    assert job is not None and job.status == JobStatus.DONE.value and job.attempts == 2
    assert len(ctx.polar.ingest_requests) == 2  # sent twice…
    assert list(ctx.polar.events) == [str(call_id)]  # …counted once
    event = ctx.polar.events[str(call_id)]
    assert event["name"] == "call.minutes" and event["external_customer_id"] == str(ctx.user.id)
    assert event["metadata"]["plan"] == "pro" and event["metadata"]["overage_minutes"] == 0
    assert 1.58 <= event["metadata"]["minutes"] <= 1.62  # per-second plan: 95 s
    async with ctx.db.session() as s:
        assert (await s.get(Call, call_id)).usage_reported  # type: ignore[union-attr]


async def test_a_polar_outage_loses_nothing(ctx: Ctx) -> None:
    await ctx.subscribe(PRO)
    call_id = await ctx.finished_call(70.0)
    ctx.polar.fail_next_ingests(3)
    await ctx.run_jobs()
    assert list(ctx.polar.events) == [str(call_id)] and len(ctx.polar.ingest_requests) == 4
    job = await ctx.job("polar-usage", call_id)
    assert job is not None and job.status == JobStatus.DONE.value


async def test_test_calls_and_short_silent_calls_are_not_sent(ctx: Ctx) -> None:
    await ctx.subscribe(PRO)
    test_call = await ctx.finished_call(120.0, channel="browser")
    misdial = await ctx.finished_call(8.0, caller_speaks=False)
    await ctx.run_jobs()
    assert ctx.polar.ingest_requests == []
    for call_id in (test_call, misdial):
        assert await ctx.job("polar-usage", call_id) is None  # nothing to report: no job at all
        async with ctx.db.session() as s:
            assert (await s.get(Call, call_id)).billable_seconds == 0  # type: ignore[union-attr]


async def test_trial_calls_count_minutes_but_are_not_sent_to_polar(ctx: Ctx) -> None:
    call_id = await ctx.finished_call(61.0)
    await ctx.run_jobs()
    assert ctx.polar.ingest_requests == []
    job = await ctx.job("polar-usage", call_id)
    assert job is not None and job.status == JobStatus.DONE.value
    usage = await BillingScope(ctx.db.session_maker, ctx.business.id, ctx.settings).usage()
    assert usage.period.plan.is_trial and usage.minutes == 2.0  # every started minute


async def test_warnings_at_80_and_100_percent_and_stop_at_the_limit(ctx: Ctx) -> None:
    await ctx.subscribe(STARTER)  # 3 included minutes, stop at the limit, per started minute
    scope = BillingScope(ctx.db.session_maker, ctx.business.id, ctx.settings)
    await ctx.finished_call(100.0)  # 2 minutes: 67 %
    await ctx.run_jobs()
    assert (await scope.answer_with_ai()).reason == "within_plan"
    async with ctx.db.session() as s:
        assert list(await s.scalars(select(UsageWarning.threshold))) == []
    await ctx.finished_call(30.0)  # 3 minutes: 100 % (80 % crossed too)
    await ctx.run_jobs()
    async with ctx.db.session() as s:
        warnings = list(await s.scalars(select(UsageWarning).order_by(UsageWarning.threshold)))
    assert [(w.threshold, w.used_minutes, w.included_minutes) for w in warnings] == [(80, 3, 3), (100, 3, 3)]
    decision = await scope.answer_with_ai()
    assert (decision.answer_with_ai, decision.reason) == (False, "limit_reached")
    await ctx.finished_call(20.0)  # another finished call doesn't warn again
    await ctx.run_jobs()
    async with ctx.db.session() as s:
        assert len(list(await s.scalars(select(UsageWarning)))) == 2


async def test_overage_plans_keep_answering_and_meter_the_overage(ctx: Ctx, polar: PolarDouble) -> None:
    await ctx.subscribe(PRO)
    # 999.5 minutes already used this period.
    await seed_call(ctx.db, ctx.business.id, started_at=datetime.now(UTC) - timedelta(hours=3),
                    billable_seconds=999.5 * 60)
    call_id = await ctx.finished_call(90.0)
    await ctx.run_jobs()
    meta = polar.events[str(call_id)]["metadata"]
    assert 0.99 <= meta["overage_minutes"] <= 1.01 and 1.49 <= meta["minutes"] <= 1.52
    decision = await BillingScope(ctx.db.session_maker, ctx.business.id, ctx.settings).answer_with_ai()
    assert (decision.answer_with_ai, decision.reason) == (True, "overage_billed")
    assert decision.usage.overage_minutes > 0.9


async def test_spam_calls_stop_counting_and_are_credited_on_polar(ctx: Ctx) -> None:
    await ctx.subscribe(PRO)
    call_id = await ctx.finished_call(120.0)
    await ctx.run_jobs()
    from app.billing.metering import enqueue_spam_credit

    async with ctx.db.session() as s, s.begin():
        await s.execute(update(Call).where(Call.id == call_id).values(is_spam=True))
        await enqueue_spam_credit(s, call_id)
    await ctx.run_jobs()
    credit: dict[str, Any] = ctx.polar.events[f"{call_id}:spam"]
    assert credit["metadata"]["minutes"] == -ctx.polar.events[str(call_id)]["metadata"]["minutes"]
    usage = await BillingScope(ctx.db.session_maker, ctx.business.id, ctx.settings).usage()
    assert usage.minutes == 0 and usage.calls == 0


@pytest.mark.parametrize(("raw", "message"), [
    ("{", "JSON list"),
    ('[{"key": "trial", "product_id": "p", "included_minutes": 1}]', "other than"),
    ('[{"key": "a", "included_minutes": 1}]', "product_id"),
    ('[{"key": "a", "product_id": "p", "included_minutes": -1}]', "included_minutes"),
    ('[{"key": "a", "product_id": "p", "included_minutes": 1, "over_limit": "maybe"}]', "over_limit"),
    ('[{"key": "a", "product_id": "p", "included_minutes": 1, "rounding": "hour"}]', "rounding"),
    ('[{"key": "a", "product_id": "p", "included_minutes": 1}, {"key": "a", "product_id": "q", '
     '"included_minutes": 1}]', "its own key"),
])
def test_bad_plans_are_refused_with_a_message(raw: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plans(raw)


def test_plans_need_a_polar_token(data_dir: Path) -> None:
    from app.settings import SettingsError

    with pytest.raises(SettingsError, match="POLAR_ACCESS_TOKEN"):
        make_settings(data_dir, POLAR_PLANS=json.dumps(PLANS))
    assert make_settings(data_dir).polar_plans == ()
    assert make_settings(data_dir).free_trial_minutes == 30


async def test_usage_of_an_unpriced_model_is_price_unknown_not_zero(ctx: Ctx) -> None:
    from app.billing.pricing import TokenUsage

    started = datetime.now(UTC) - timedelta(seconds=30)
    _session, call = await seed_call(ctx.db, ctx.business.id, status="in_progress", started_at=started, cost_usd=0.0)
    recorder = CallRecorder(ctx.db, call_id=call.id, session_id=call.session_id, business_id=ctx.business.id,
                            started_at=started)
    recorder.add_usage("realtime", "gpt-realtime-9-preview-unpriced", TokenUsage(audio_input=50_000))
    recorder.add_usage("supervisor", "gpt-4.1", TokenUsage(text_input=1_000_000))
    assert await recorder.finalise(CallStatus.COMPLETED, "goodbye")
    async with ctx.db.session() as s:
        row = await s.get(Call, call.id)
    assert row is not None and row.price_unknown and row.cost_usd == 2.0  # only the priced part
    assert row.usage["realtime"]["cost_usd"] is None
    from app.dashboard.common import Formatter

    assert Formatter.cost(row.cost_usd, row.price_unknown) == "$2.00 + price unknown"
    assert Formatter.cost(0.0, True) == "price unknown"


async def test_finalising_fixes_billing_in_one_transaction_on_every_database_mode(any_db: Database) -> None:
    from app.jobs import job_id_for

    _user, business = await create_owner(any_db)
    started = datetime.now(UTC) - timedelta(seconds=40)
    billed, silent_test = [], []
    for channel_phone, target in (("+15551230001", billed), (None, silent_test)):
        _session, call = await seed_call(any_db, business.id, status="in_progress", started_at=started,
                                         caller_phone=channel_phone)
        recorder = CallRecorder(any_db, call_id=call.id, session_id=call.session_id, business_id=business.id,
                                started_at=started)
        recorder.add(EventKind.CALLER, "Hello?")
        assert await recorder.finalise(CallStatus.COMPLETED, "caller_hung_up")
        assert not await recorder.finalise(CallStatus.FAILED, "again")  # exactly once
        target.append(call.id)
    async with any_db.session() as s:
        twilio_call, browser_call = await s.get(Call, billed[0]), await s.get(Call, silent_test[0])
        assert twilio_call is not None and 40 <= twilio_call.billable_seconds < 45
        assert browser_call is not None and browser_call.billable_seconds == 0
        assert await s.get(Job, job_id_for(f"polar-usage:{billed[0]}")) is not None
        assert await s.get(Job, job_id_for(f"polar-usage:{silent_test[0]}")) is None
