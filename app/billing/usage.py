"""Billable minutes: which calls count, the plan and period a business is in, and whether the AI answers.

Invariants:
- A call's `billable_seconds` is fixed once, by the UPDATE that finalises it (`billable_on_finalise`): browser
  test calls, calls the AI never answered, and calls under 15 s that ended before the caller spoke count 0.
  Calls the owner marked as spam are left out of every sum, so marking one gives its minutes back at once.
- A business is on its Polar subscription's plan while that subscription entitles it (active, trialing, past
  due, or canceled with the paid period still running); the period is the subscription's own. Otherwise it
  is on the free trial, whose minutes are every billable call the business ever had (a trial, not a monthly
  allowance).
- Every query here is scoped to one business id (`BillingScope`), and sums read only the columns they need
  (no transcripts), with the (business_id, started_at) index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing.call_cost import COST_COLUMNS, TOTAL_COST_USD, phone_cost_open_count
from app.billing.plans import Plan, plan_for_product, trial_plan
from app.db.models import (
    PLAN_LIMIT_END_REASONS,
    Billing,
    BillingSubscription,
    Call,
    Channel,
    SubscriptionStatus,
    UsageWarning,
)
from app.settings import Settings

#: A call shorter than this that ended before the caller said anything is not billed (a misdial, a hang-up
#: during the greeting).
SHORT_SILENT_SECONDS = 15.0
# Polar keeps a canceled subscription usable until its period ends; past_due is still the customer's plan
# while Polar retries the payment.
TRIAL_START = datetime(2000, 1, 1, tzinfo=UTC)
_ENTITLED = {SubscriptionStatus.ACTIVE.value, SubscriptionStatus.TRIALING.value, SubscriptionStatus.PAST_DUE.value}


def billable_seconds(channel: str, duration_seconds: float, *, caller_spoke: bool, answered: bool = True) -> float:
    if channel != Channel.TWILIO.value or not answered:
        return 0.0
    if duration_seconds < SHORT_SILENT_SECONDS and not caller_spoke:
        return 0.0
    return max(0.0, round(duration_seconds, 3))


def billed_minutes(seconds: float, plan: Plan) -> float:
    """One call's minutes as the plan rounds them."""
    if seconds <= 0:
        return 0.0
    return float(math.ceil(seconds / 60.0)) if plan.rounding == "minute" else round(seconds / 60.0, 4)


def billable_on_finalise(duration_seconds: float, *, caller_spoke: bool) -> Any:
    """The `billable_seconds` value for the finalising UPDATE itself (no extra statement in that transaction):
    the call's channel decides in SQL, the length and caller speech here."""
    seconds = billable_seconds(Channel.TWILIO.value, duration_seconds, caller_spoke=caller_spoke)
    return case((Call.channel == Channel.TWILIO.value, seconds), else_=0.0)


@dataclass(frozen=True, slots=True)
class Period:
    plan: Plan
    start: datetime
    end: datetime | None  # None: the free trial, which has no end
    subscription: BillingSubscription | None = None


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    period: Period
    calls: int
    seconds: float
    minutes: float

    @property
    def included(self) -> int:
        return self.period.plan.included_minutes

    @property
    def fraction(self) -> float:
        return self.minutes / self.included if self.included else (1.0 if self.minutes else 0.0)

    @property
    def overage_minutes(self) -> float:
        return max(0.0, self.minutes - self.included)

    @property
    def limit_reached(self) -> bool:
        return self.minutes >= self.included

    def projected_minutes(self, now: datetime) -> float | None:
        """Straight-line projection to the period's end (None for the trial, which has no end)."""
        start, end = self.period.start, self.period.end
        if end is None or now <= start:
            return None
        elapsed = (min(now, end) - start).total_seconds()
        total = (end - start).total_seconds()
        if elapsed <= 0 or total <= 0:
            return None
        return round(self.minutes * total / elapsed, 1)


@dataclass(frozen=True, slots=True)
class Decision:
    answer_with_ai: bool
    # within_plan | overage_billed | limit_reached
    reason: str
    usage: PeriodUsage


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def entitles(sub: BillingSubscription, now: datetime) -> bool:
    if sub.status in _ENTITLED:
        end = _utc(sub.ends_at)
        return end is None or end > now
    if sub.status == SubscriptionStatus.CANCELED.value:
        end = _utc(sub.ends_at) or _utc(sub.current_period_end)
        return end is not None and end > now
    return False


class BillingScope:
    """Billing reads and writes for one business."""

    def __init__(self, session_maker: async_sessionmaker[AsyncSession], business_id: UUID, settings: Settings) -> None:
        self._sessions = session_maker
        self.business_id = business_id
        self.settings = settings

    @property
    def trial(self) -> Plan:
        return trial_plan(self.settings.free_trial_minutes)

    async def subscription(self) -> BillingSubscription | None:
        async with self._sessions() as s:
            return await s.scalar(
                select(BillingSubscription).where(BillingSubscription.business_id == self.business_id)
            )

    async def period(self, now: datetime | None = None) -> Period:
        now = now or datetime.now(UTC)
        sub = await self.subscription()
        if sub is not None and entitles(sub, now):
            plan = plan_for_product(self.settings.polar_plans, sub.product_id)
            start, end = _utc(sub.current_period_start), _utc(sub.current_period_end)
            if plan is not None and start is not None:
                return Period(plan=plan, start=start, end=end, subscription=sub)
        return Period(plan=self.trial, start=TRIAL_START, end=None, subscription=sub)

    async def usage(self, period: Period | None = None) -> PeriodUsage:
        period = period or await self.period()
        seconds = Call.billable_seconds
        minutes = (
            func.sum(cast(seconds / 60.0, Integer) + case((seconds > cast(seconds / 60.0, Integer) * 60.0, 1), else_=0))
            if period.plan.rounding == "minute"
            else func.sum(seconds) / 60.0
        )
        conditions = [Call.business_id == self.business_id, Call.started_at >= period.start,
                      Call.billable_seconds > 0, Call.is_spam.is_(False)]
        if period.end is not None:
            conditions.append(Call.started_at < period.end)
        async with self._sessions() as s:
            row = (await s.execute(
                # count(): Call.id isn't in ix_call_business_figures, which covers the rest (issue 14).
                select(func.count(), func.coalesce(func.sum(seconds), 0.0), func.coalesce(minutes, 0))
                .where(*conditions)
            )).one()
        return PeriodUsage(period=period, calls=int(row[0]), seconds=float(row[1]), minutes=round(float(row[2]), 4))

    async def answer_with_ai(self, now: datetime | None = None) -> Decision:
        """Whether the next call is answered by the AI, and why."""
        usage = await self.usage(await self.period(now))
        if not usage.limit_reached:
            return Decision(True, "within_plan", usage)
        if usage.period.plan.over_limit == "overage":
            return Decision(True, "overage_billed", usage)
        return Decision(False, "limit_reached", usage)


#: The columns the billing page lists per call (no transcripts or usage blobs).
PAGE_CALL_COLUMNS = (Call.id, Call.started_at, Call.channel, Call.duration_seconds, Call.billable_seconds,
                     Call.is_spam, Call.input_tokens, Call.output_tokens, *COST_COLUMNS, Call.end_reason)


async def page_figures(scope: BillingScope, period: Period, start: datetime, end: datetime | None, *,
                       count_unreported: bool, call_limit: int) -> dict[str, Any]:
    """The billing page's reads for one window of the scope's business: totals, calls forwarded at the limit,
    calls whose usage has not reached Polar yet, the listed calls, the period's warnings, recorded orders."""
    in_period = [Call.business_id == scope.business_id, Call.started_at >= start]
    if end is not None:
        in_period.append(Call.started_at < end)
    async with scope._sessions() as s:
        count, cost, unknown, tokens_in, tokens_out, ai_cost, phone_cost, phone_pending = (await s.execute(
            select(func.count(Call.id), func.coalesce(func.sum(TOTAL_COST_USD), 0.0),
                   func.coalesce(func.sum(Call.price_unknown), 0), func.coalesce(func.sum(Call.input_tokens), 0),
                   func.coalesce(func.sum(Call.output_tokens), 0), func.coalesce(func.sum(Call.cost_usd), 0.0),
                   func.coalesce(func.sum(Call.telephony_cost_usd), 0.0), phone_cost_open_count())
            .where(*in_period)
        )).one()
        forwarded = await s.scalar(
            select(func.count(Call.id)).where(*in_period, Call.end_reason.in_(PLAN_LIMIT_END_REASONS))
        )
        unreported = await s.scalar(
            select(func.count(Call.id)).where(*in_period, Call.billable_seconds > 0, Call.is_spam.is_(False),
                                              Call.usage_reported.is_(False), Call.ended_at.is_not(None))
        ) if count_unreported else 0
        calls = (await s.execute(
            select(*PAGE_CALL_COLUMNS).where(*in_period).order_by(Call.started_at.desc()).limit(call_limit)
        )).all()
        warnings = list(await s.scalars(
            select(UsageWarning).where(UsageWarning.business_id == scope.business_id,
                                       UsageWarning.period_start == period.start)
            .order_by(UsageWarning.threshold.desc())
        ))
        recorded_orders = list(await s.scalars(
            select(Billing).where(Billing.business_id == scope.business_id)
            .order_by(Billing.created_at.desc()).limit(10)
        ))
    return {
        "totals": {"calls": count, "cost": float(cost), "price_unknown": int(unknown), "input_tokens": tokens_in,
                   "output_tokens": tokens_out, "ai_cost": float(ai_cost), "phone_cost": float(phone_cost),
                   "phone_pending": int(phone_pending)},
        "forwarded": forwarded or 0,
        "unreported": unreported or 0,
        "calls": calls,
        "truncated": count > len(calls),
        "warnings": warnings,
        "recorded_orders": recorded_orders,
    }
