"""Overview: today's and this month's calls, minutes, cost and bookings, and a 14-day call-volume chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import get
from litestar.response import Template
from sqlalchemy import func, select

from app.auth.deps import Owner
from app.dashboard.charts import Bar, bar_chart
from app.dashboard.common import business_zone, local_day_bounds, page
from app.db.engine import Database
from app.db.models import Appointment, AppointmentStatus, Business, Call, Session, SessionStatus

CHART_DAYS = 14


async def _totals(db: Database, business_id: UUID, start: datetime, end: datetime) -> dict[str, Any]:
    async with db.session() as s:
        calls, seconds, cost, price_unknown = (
            await s.execute(
                select(func.count(Call.id), func.coalesce(func.sum(Call.duration_seconds), 0.0),
                       func.coalesce(func.sum(Call.cost_usd), 0.0), func.coalesce(func.sum(Call.price_unknown), 0))
                .where(Call.business_id == business_id, Call.started_at >= start, Call.started_at < end)
            )
        ).one()
        booked = await s.scalar(
            select(func.count(Appointment.id)).where(
                Appointment.business_id == business_id,
                Appointment.status == AppointmentStatus.BOOKED.value,
                Appointment.created_at >= start,
                Appointment.created_at < end,
            )
        )
    return {"calls": calls, "seconds": seconds, "cost": cost, "price_unknown": bool(price_unknown),
            "booked": booked or 0}


async def _daily_counts(db: Database, business_id: UUID, days: list[date], tz: Any) -> list[int]:
    start, end = local_day_bounds(days[0], tz)[0], local_day_bounds(days[-1], tz)[1]
    async with db.session() as s:
        stamps = await s.scalars(
            select(Call.started_at).where(
                Call.business_id == business_id, Call.started_at >= start, Call.started_at < end
            )
        )
        counts = dict.fromkeys(days, 0)
        # Bucketed here, not in SQL: SQLite has no named-timezone conversion, and 14 days of timestamps is small.
        for stamp in stamps:
            day = stamp.astimezone(tz).date()
            if day in counts:
                counts[day] += 1
    return [counts[d] for d in days]


@get("/", name="dashboard:overview")
async def overview(owner: Owner, business: Business, db: Database) -> Template:
    tz = business_zone(business.timezone)
    today = datetime.now(UTC).astimezone(tz).date()
    month_first = today.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    day_start, day_end = local_day_bounds(today, tz)
    month_start, month_end = local_day_bounds(month_first, tz)[0], local_day_bounds(next_month, tz)[0]
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    counts = await _daily_counts(db, business.id, days, tz)
    chart = bar_chart(
        [Bar(label=d.strftime("%d"), title=f"{d:%a %d %b}: {c} call{'s' if c != 1 else ''}", value=c)
         for d, c in zip(days, counts, strict=True)],
        title=f"Calls per day, last {CHART_DAYS} days",
    )
    async with db.session() as s:
        live = await s.scalar(
            select(func.count(Session.id)).where(
                Session.business_id == business.id, Session.status == SessionStatus.ACTIVE.value
            )
        )
        recent = list(
            await s.scalars(
                select(Call).where(Call.business_id == business.id).order_by(Call.started_at.desc()).limit(5)
            )
        )
    return page(
        "dashboard/overview.html",
        owner,
        today=await _totals(db, business.id, day_start, day_end),
        month=await _totals(db, business.id, month_start, month_end),
        month_label=f"{month_first:%B %Y}",
        chart=chart,
        chart_total=sum(counts),
        live_count=live or 0,
        recent=recent,
    )


ROUTES = [overview]
