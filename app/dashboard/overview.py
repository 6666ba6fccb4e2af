"""Overview: today's and this month's calls, minutes, cost and bookings, and a 14-day call-volume chart.

`/` is also the public landing page: visitors who aren't signed in see what the receptionist does instead
of a sign-in wall. Numbers leave out browser test calls unless the owner asks for them (`?tests=1`), and
say so. Every figure comes from a few aggregate queries: totals for today and the month in one windowed
query with conditional sums, calls per local day bucketed in SQL with a CASE over the day boundaries
(computed in Python from the business's timezone, so DST days are 23 or 25 hours long as they should be).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy import and_, case, func, select, true
from sqlalchemy.sql.elements import ColumnElement

from app.auth.cookies import SessionSigner
from app.auth.deps import Owner, provide_owner
from app.dashboard.charts import Bar, bar_chart
from app.dashboard.common import business_zone, local_day_bounds, page
from app.dashboard.landing import landing_page
from app.db.engine import Database
from app.db.models import Appointment, AppointmentStatus, Call, Channel, Session, SessionStatus
from app.settings import Settings

CHART_DAYS = 14
RECENT_COLUMNS = (Call.id, Call.started_at, Call.caller_phone, Call.channel, Call.status, Call.duration_seconds)


def _counted(include_tests: bool) -> ColumnElement[bool]:
    return true() if include_tests else Call.channel != Channel.BROWSER.value


async def _totals(
    db: Database, business_id: UUID, day: tuple[datetime, datetime], month: tuple[datetime, datetime],
    include_tests: bool,
) -> tuple[dict[str, Any], dict[str, Any], int]:
    start, end = min(day[0], month[0]), max(day[1], month[1])
    in_day = and_(Call.started_at >= day[0], Call.started_at < day[1])
    in_month = and_(Call.started_at >= month[0], Call.started_at < month[1])
    counted = _counted(include_tests)
    test = Call.channel == Channel.BROWSER.value

    def sums(window: ColumnElement[bool]) -> list[Any]:
        inside = and_(window, counted)
        return [
            func.coalesce(func.sum(case((inside, 1), else_=0)), 0),
            func.coalesce(func.sum(case((inside, Call.duration_seconds), else_=0.0)), 0.0),
            func.coalesce(func.sum(case((inside, Call.cost_usd), else_=0.0)), 0.0),
        ]

    async with db.session() as s:
        row = (
            await s.execute(
                select(*sums(in_day), *sums(in_month), func.coalesce(func.sum(case((and_(in_month, test), 1),
                                                                                   else_=0)), 0))
                .where(Call.business_id == business_id, Call.started_at >= start, Call.started_at < end)
            )
        ).one()
        booked_day, booked_month = (
            await s.execute(
                select(
                    func.coalesce(func.sum(case((and_(Appointment.created_at >= day[0],
                                                      Appointment.created_at < day[1]), 1), else_=0)), 0),
                    func.count(Appointment.id),
                ).where(
                    Appointment.business_id == business_id,
                    Appointment.status == AppointmentStatus.BOOKED.value,
                    Appointment.created_at >= month[0],
                    Appointment.created_at < month[1],
                )
            )
        ).one()
    today = {"calls": row[0], "seconds": row[1], "cost": row[2], "booked": booked_day or 0}
    this_month = {"calls": row[3], "seconds": row[4], "cost": row[5], "booked": booked_month or 0}
    return today, this_month, int(row[6] or 0)


async def daily_counts(db: Database, business_id: UUID, days: list[date], tz: Any, include_tests: bool) -> list[int]:
    """Calls per local day, counted by the database: one row per day that had any."""
    bounds = [local_day_bounds(d, tz) for d in days]
    bucket = case(*((Call.started_at < end, index) for index, (_start, end) in enumerate(bounds)), else_=-1)
    async with db.session() as s:
        rows = (
            await s.execute(
                select(bucket.label("day"), func.count(Call.id))
                .where(
                    Call.business_id == business_id,
                    Call.started_at >= bounds[0][0],
                    Call.started_at < bounds[-1][1],
                    _counted(include_tests),
                )
                .group_by("day")
            )
        ).tuples()
        counts = dict(rows.all())
    return [counts.get(index, 0) for index in range(len(days))]


async def _overview(owner: Owner, db: Database, include_tests: bool) -> Template:
    business = owner.business
    assert business is not None
    tz = business_zone(business.timezone)
    today = datetime.now(UTC).astimezone(tz).date()
    month_first = today.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    day_window = local_day_bounds(today, tz)
    month_window = local_day_bounds(month_first, tz)[0], local_day_bounds(next_month, tz)[0]
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    counts = await daily_counts(db, business.id, days, tz, include_tests)
    bars = [Bar(label=d.strftime("%d"), title=f"{d:%a %d %b}: {c} call{'s' if c != 1 else ''}", value=c)
            for d, c in zip(days, counts, strict=True)]
    title = f"Calls per day, last {CHART_DAYS} days"
    # Drawn twice, the page's CSS showing one: an SVG scales its text with it, so one drawing is either
    # unreadably small on a phone or huge on a desktop. The narrow one labels every other day.
    chart = Markup(
        bar_chart(bars, title=title, css_class="chart chart-wide")
        + bar_chart([Bar(label=b.label if (len(bars) - 1 - i) % 2 == 0 else "", title=b.title, value=b.value)
                     for i, b in enumerate(bars)], title=title, width=360, height=200, css_class="chart chart-narrow")
    )
    totals_today, totals_month, tests_this_month = await _totals(
        db, business.id, day_window, month_window, include_tests)
    async with db.session() as s:
        live = await s.scalar(
            select(func.count(Session.id)).where(
                Session.business_id == business.id, Session.status == SessionStatus.ACTIVE.value
            )
        )
        recent = list(
            (await s.execute(
                select(*RECENT_COLUMNS).where(Call.business_id == business.id)
                .order_by(Call.started_at.desc()).limit(5)
            )).all()
        )
    return page(
        "dashboard/overview.html",
        owner,
        today=totals_today,
        month=totals_month,
        month_label=f"{month_first:%B %Y}",
        chart=chart,
        chart_total=sum(counts),
        live_count=live or 0,
        recent=recent,
        include_tests=include_tests,
        tests_this_month=tests_this_month,
    )


@get("/", name="dashboard:overview")
async def overview(request: Request[Any, Any, Any], db: Database, signer: SessionSigner, settings: Settings) -> Any:
    try:
        owner = await provide_owner(request, db, signer)
    except NotAuthorizedException:
        return landing_page(settings)
    if owner.business is None:
        return Redirect(path="/onboarding")
    return await _overview(owner, db, include_tests=request.query_params.get("tests") == "1")


ROUTES = [overview]
