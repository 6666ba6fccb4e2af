"""Billing: this period's minutes, tokens and cost (per call and in total), past periods, and the plan.

A period is a calendar month in the business's own timezone, so "this month" matches the owner's wall
calendar. Checkout itself (Polar) belongs to the billing room; this page only offers the button.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from litestar import get
from litestar.response import Template

from app.auth.deps import Owner
from app.dashboard.common import business_zone, local_day_bounds, page
from app.db.models import Business
from app.db.owner_queries import OwnerScope
from app.settings import Settings

PER_CALL_LIMIT = 500


@get("/billing", name="dashboard:billing")
async def billing_page(owner: Owner, business: Business, owner_scope: OwnerScope, settings: Settings) -> Template:
    tz = business_zone(business.timezone)
    first = datetime.now(UTC).astimezone(tz).date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    start, end = local_day_bounds(first, tz)[0], local_day_bounds(following, tz)[0]
    totals = await owner_scope.totals(start, end)
    calls = await owner_scope.calls_between(start, end, limit=PER_CALL_LIMIT)
    return page(
        "dashboard/billing.html",
        owner,
        period_label=f"{first:%B %Y}",
        period_from=first.isoformat(),
        totals={"calls": totals.calls, "seconds": totals.seconds, "input_tokens": totals.input_tokens,
                "output_tokens": totals.output_tokens, "cost": totals.cost},
        calls=calls,
        truncated=totals.calls > len(calls),
        periods=await owner_scope.billing_periods(36),
        checkout=bool(settings.polar_access_token),
    )


ROUTES = [billing_page]
