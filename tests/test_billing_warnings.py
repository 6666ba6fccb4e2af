"""The 80 % / 100 % usage warnings: which thresholds a period's minutes reach, which one the owner is told about
(exactly once per period and threshold, even from two workers at once), that a new period warns afresh, and
the words that say what happens next on the plan. The end-to-end path (a real call, the real SMTP double) is
in tests/test_billing_e2e.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.billing.plans import Plan, trial_plan
from app.billing.usage import Period, PeriodUsage
from app.billing.warnings import SUPERSEDED, period_key, record_warnings, thresholds_reached, to_send
from app.db.engine import Database
from app.db.models import Business, Job, Notification, NotificationSettings, UsageWarning, User
from app.inbox.texts import Context, compose
from app.jobs import job_id_for
from app.settings import Settings
from tests.conftest import make_settings, migrated_database
from tests.support.data import create_owner

STOP = Plan(key="starter", name="Starter", included_minutes=1000, over_limit="stop", product_id="prod_s")
OVERAGE = Plan(key="pro", name="Pro", included_minutes=1000, over_limit="overage", product_id="prod_p")
PERIOD_START = datetime(2026, 11, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 1, tzinfo=UTC)


def usage(minutes: float, plan: Plan = STOP, start: datetime = PERIOD_START) -> PeriodUsage:
    end = None if plan.is_trial else start + (PERIOD_END - PERIOD_START)
    return PeriodUsage(period=Period(plan=plan, start=start, end=end), calls=1, seconds=minutes * 60,
                       minutes=minutes)


def test_thresholds_reached_at_the_boundaries() -> None:
    assert thresholds_reached(799.0, 1000) == []  # 79.9 %
    assert thresholds_reached(800.0, 1000) == [80]  # exactly 80 %
    assert thresholds_reached(999.99, 1000) == [80]
    assert thresholds_reached(1000.0, 1000) == [80, 100]  # exactly 100 %
    assert thresholds_reached(1050.0, 1000) == [80, 100]
    assert thresholds_reached(4.0, 5) == [80]  # a small trial: 4 of 5 minutes is 80 % on the dot
    assert thresholds_reached(12.0, 0) == []  # nothing included: nothing to warn about


def test_the_owner_is_told_the_highest_threshold_this_run_recorded() -> None:
    assert to_send([80], [80]) == 80
    assert to_send([80, 100], [80, 100]) == 100  # 70 % -> 105 % in one call: one "all used" warning
    assert to_send([80, 100], [100]) == 100  # 80 % was told earlier
    assert to_send([80, 100], [80]) is None  # 100 % was recorded (and told) by an earlier run
    assert to_send([80], []) is None  # a retry or a second worker: recorded already
    assert to_send([], []) is None


@dataclass
class Ctx:
    db: Database
    settings: Settings
    user: User
    business: Business

    async def rows(self) -> tuple[list[UsageWarning], list[Notification]]:
        async with self.db.session() as s:
            warnings = list(await s.scalars(select(UsageWarning).order_by(UsageWarning.period_start,
                                                                          UsageWarning.threshold)))
            notes = list(await s.scalars(select(Notification).order_by(Notification.created_at)))
        return warnings, notes


@pytest.fixture
async def ctx(data_dir: Path) -> AsyncIterator[Ctx]:
    settings = make_settings(data_dir)
    async with migrated_database(settings) as db:
        user, business = await create_owner(db, phone_number="+12125550100", transfer_number="+12125550111")
        async with db.session() as s, s.begin():  # email and text, as the owner's settings say
            s.add(NotificationSettings(business_id=business.id, email_enabled=True, email_to="", sms_enabled=True,
                                       sms_to="+12125550199", on_follow_up=True, on_bookings=True, on_failures=True,
                                       digest_enabled=False, digest_time="18:00", confirmations_enabled=False,
                                       reminders_enabled=False, reminder_time="18:00"))
        yield Ctx(db, settings, user, business)


async def test_79_9_percent_warns_nothing_and_80_percent_warns_once_on_each_channel(ctx: Ctx) -> None:
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(799.0)) == []
    assert await ctx.rows() == ([], [])
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(800.0)) == [80]
    warnings, notes = await ctx.rows()
    assert [(w.threshold, w.used_minutes, w.delivered_by) for w in warnings] == [(80, 800, "billing page, email, text")]
    assert sorted((n.event, n.channel, n.recipient) for n in notes) == [
        ("usage_warning", "email", ctx.user.email), ("usage_warning", "sms", "+12125550199")]
    async with ctx.db.session() as s:  # each with its keyed send job, in the same transaction
        for n in notes:
            assert (await s.get(Job, job_id_for(f"notify:{n.key}"))) is not None
    # More minutes in the same period, a retried job: nothing new.
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(900.0)) == []
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(800.0)) == []
    assert len((await ctx.rows())[1]) == 2


async def test_two_workers_at_once_send_it_once(ctx: Ctx) -> None:
    results = await asyncio.gather(*(record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(1000.0))
                                     for _ in range(3)))
    assert sorted(results) == [[], [], [80, 100]]
    warnings, notes = await ctx.rows()
    assert [w.threshold for w in warnings] == [80, 100]
    assert sorted((n.details["threshold"], n.channel) for n in notes) == [(100, "email"), (100, "sms")]


async def test_a_jump_past_both_thresholds_sends_only_the_100_percent_warning(ctx: Ctx) -> None:
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(700.0)) == []
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(1050.0)) == [80, 100]
    warnings, notes = await ctx.rows()
    assert [(w.threshold, w.delivered_by) for w in warnings] == [(80, SUPERSEDED), (100, "billing page, email, text")]
    assert {n.details["threshold"] for n in notes} == {100} and len(notes) == 2


async def test_80_then_100_sends_each_once(ctx: Ctx) -> None:
    await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(850.0))
    await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(1000.0))
    await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(1200.0))
    _warnings, notes = await ctx.rows()
    assert sorted((n.details["threshold"], n.channel) for n in notes) == [
        (80, "email"), (80, "sms"), (100, "email"), (100, "sms")]


async def test_a_new_period_warns_again(ctx: Ctx) -> None:
    await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(1000.0))
    following = PERIOD_END
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(10.0, start=following)) == []
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(820.0, start=following)) == [80]
    warnings, notes = await ctx.rows()
    assert [(w.period_start, w.threshold) for w in warnings] == [
        (PERIOD_START, 80), (PERIOD_START, 100), (following, 80)]
    assert sorted(n.details["threshold"] for n in notes) == [80, 80, 100, 100]


async def test_without_email_or_text_the_billing_page_is_how_the_owner_is_told(ctx: Ctx) -> None:
    async with ctx.db.session() as s, s.begin():
        prefs = await s.scalar(select(NotificationSettings))
        assert prefs is not None
        prefs.email_enabled, prefs.sms_enabled = False, False
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(1000.0)) == [80, 100]
    warnings, notes = await ctx.rows()
    assert notes == [] and [w.delivered_by for w in warnings] == [SUPERSEDED, "billing page"]


async def _words(ctx: Ctx, minutes: float, plan: Plan) -> str:
    await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(minutes, plan))
    async with ctx.db.session() as s:
        n = await s.scalar(select(Notification).where(Notification.channel == "email")
                           .order_by(Notification.created_at.desc()))
        business = await s.get(Business, ctx.business.id)
    assert n is not None and business is not None
    text = compose(Context(notification=n, business=business, base_url="https://receptionist.example"))
    assert "https://receptionist.example/billing" in text.body
    return text.subject + "\n" + text.body


async def test_the_words_say_what_happens_next_on_a_stop_at_limit_plan(ctx: Ctx) -> None:
    eighty = await _words(ctx, 800.0, STOP)
    assert "80 % of your Starter plan's minutes (800 of 1000)" in eighty
    assert "calls will be forwarded to your transfer number +12125550111 instead of answered" in eighty
    assert "renew on 30 Nov 2026" in eighty  # the period ends at midnight UTC: evening of the 30th in New York
    full = await _words(ctx, 1000.0, STOP)
    assert "All 1000 included minutes of your Starter plan are used" in full
    assert "From now on calls are forwarded to your transfer number +12125550111" in full and "Upgrade" in full


async def test_the_words_say_overage_is_billed_on_an_overage_plan(ctx: Ctx) -> None:
    full = await _words(ctx, 1000.0, OVERAGE)
    assert "still answered" in full and "billed as overage" in full and "forwarded" not in full


async def test_the_trial_without_a_transfer_number_says_voicemail(ctx: Ctx) -> None:
    async with ctx.db.session() as s, s.begin():
        business = await s.get(Business, ctx.business.id)
        assert business is not None
        business.transfer_number = None
    trial = trial_plan(5)
    full = await _words(ctx, 5.0, trial)
    assert "All 5 included minutes of your Free trial plan are used" in full
    assert "sent to voicemail" in full and "renew" not in full  # the trial is not a monthly allowance
    # The trial's period never changes: its warnings stay once ever.
    assert await record_warnings(ctx.db, ctx.settings, ctx.business.id, usage(9.0, trial)) == []


def test_period_starts_are_compared_in_utc() -> None:
    # The same instant written in another offset is the same period: keys are built from UTC.
    business = uuid4()
    assert period_key(business, PERIOD_START) == period_key(business, PERIOD_START.astimezone(ZoneInfo("Europe/Paris")))
