"""Overview: today's and this month's calls, minutes, cost and bookings, and a 14-day call-volume chart."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from litestar import get
from litestar.response import Template

from app.auth.deps import Owner
from app.dashboard.charts import Bar, bar_chart
from app.dashboard.common import business_zone, local_day_bounds, page
from app.db.models import Business
from app.db.owner_queries import OwnerScope

CHART_DAYS = 14


async def _totals(owner_scope: OwnerScope, start: datetime, end: datetime) -> dict[str, Any]:
    return asdict(await owner_scope.totals(start, end))


async def _daily_counts(owner_scope: OwnerScope, days: list[date], tz: Any) -> list[int]:
    start, end = local_day_bounds(days[0], tz)[0], local_day_bounds(days[-1], tz)[1]
    counts = dict.fromkeys(days, 0)
    # Bucketed here, not in SQL: SQLite has no named-timezone conversion, and 14 days of timestamps is small.
    for stamp in await owner_scope.call_start_times(start, end):
        day = stamp.astimezone(tz).date()
        if day in counts:
            counts[day] += 1
    return [counts[d] for d in days]


@get("/", name="dashboard:overview")
async def overview(owner: Owner, business: Business, owner_scope: OwnerScope) -> Template:
    tz = business_zone(business.timezone)
    today = datetime.now(UTC).astimezone(tz).date()
    month_first = today.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    day_start, day_end = local_day_bounds(today, tz)
    month_start, month_end = local_day_bounds(month_first, tz)[0], local_day_bounds(next_month, tz)[0]
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    counts = await _daily_counts(owner_scope, days, tz)
    chart = bar_chart(
        [Bar(label=d.strftime("%d"), title=f"{d:%a %d %b}: {c} call{'s' if c != 1 else ''}", value=c)
         for d, c in zip(days, counts, strict=True)],
        title=f"Calls per day, last {CHART_DAYS} days",
    )
    return page(
        "dashboard/overview.html",
        owner,
        today=await _totals(owner_scope, day_start, day_end),
        month=await _totals(owner_scope, month_start, month_end),
        month_label=f"{month_first:%B %Y}",
        chart=chart,
        chart_total=sum(counts),
        live_count=await owner_scope.live_session_count(),
        recent=await owner_scope.recent_calls(5),
    )


ROUTES = [overview]
