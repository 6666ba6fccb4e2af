"""Billing: this period's minutes, tokens and cost (per call and in total), past periods, and the plan.

A period is a calendar month in the business's own timezone, so "this month" matches the owner's wall
calendar. Checkout itself (Polar) belongs to the billing room; this page only offers the button.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import get
from litestar.response import Template
from sqlalchemy import func, select

from app.auth.deps import Owner
from app.dashboard.common import business_zone, local_day_bounds, page
from app.db.engine import Database
from app.db.models import Billing, Business, Call
from app.settings import Settings

PER_CALL_LIMIT = 500
PER_CALL_COLUMNS = (
    Call.id, Call.started_at, Call.duration_seconds, Call.input_tokens, Call.output_tokens, Call.cost_usd
)


@get("/billing", name="dashboard:billing")
async def billing_page(owner: Owner, business: Business, db: Database, settings: Settings) -> Template:
    tz = business_zone(business.timezone)
    first = datetime.now(UTC).astimezone(tz).date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    start, end = local_day_bounds(first, tz)[0], local_day_bounds(following, tz)[0]
    in_period = (Call.business_id == business.id, Call.started_at >= start, Call.started_at < end)
    async with db.session() as s:
        count, seconds, input_tokens, output_tokens, cost = (
            await s.execute(
                select(
                    func.count(Call.id),
                    func.coalesce(func.sum(Call.duration_seconds), 0.0),
                    func.coalesce(func.sum(Call.input_tokens), 0),
                    func.coalesce(func.sum(Call.output_tokens), 0),
                    func.coalesce(func.sum(Call.cost_usd), 0.0),
                ).where(*in_period)
            )
        ).one()
        # Only the columns the table shows: whole rows would drag every transcript and event list along.
        calls = list(
            (await s.execute(
                select(*PER_CALL_COLUMNS).where(*in_period).order_by(Call.started_at.desc()).limit(PER_CALL_LIMIT)
            )).all()
        )
        periods = list(
            await s.scalars(
                select(Billing).where(Billing.business_id == business.id).order_by(Billing.period.desc()).limit(36)
            )
        )
    return page(
        "dashboard/billing.html",
        owner,
        period_label=f"{first:%B %Y}",
        period_from=first.isoformat(),
        totals={"calls": count, "seconds": seconds, "input_tokens": input_tokens,
                "output_tokens": output_tokens, "cost": cost},
        calls=calls,
        truncated=count > len(calls),
        periods=periods,
        checkout=bool(settings.polar_access_token),
    )


ROUTES = [billing_page]
