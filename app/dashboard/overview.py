"""Overview: today's and this month's calls, minutes, cost and bookings, and a 14-day call-volume chart.

`/` is also the public landing page: visitors who aren't signed in see what the receptionist does instead
of a sign-in wall (the app-wide guard lists `/` as public and this handler decides). Numbers leave out
browser test calls unless the owner asks for them (`?tests=1`), and say so. Every figure comes from a few
aggregate queries in `OwnerScope`: totals for today and the month in one windowed query with conditional
sums, calls per local day bucketed in SQL with a CASE over the day boundaries (computed here from the
business's timezone, so DST days are 23 or 25 hours long as they should be).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect, Template
from markupsafe import Markup

from app.auth.deps import Owner, provide_owner, provide_owner_scope
from app.dashboard.charts import Bar, bar_chart
from app.dashboard.common import business_zone, formatter, local_day_bounds, page
from app.dashboard.landing import landing_page
from app.db.engine import Database
from app.db.models import Business
from app.db.owner_queries import OwnerScope
from app.i18n.text import ntr, tr
from app.settings import Settings

CHART_DAYS = 14


async def _overview(owner: Owner, business: Business, owner_scope: OwnerScope, include_tests: bool) -> Template:
    tz = business_zone(business.timezone)
    today = datetime.now(UTC).astimezone(tz).date()
    month_first = today.replace(day=1)
    next_month = (month_first + timedelta(days=32)).replace(day=1)
    day_window = local_day_bounds(today, tz)
    month_window = local_day_bounds(month_first, tz)[0], local_day_bounds(next_month, tz)[0]
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    counts = await owner_scope.daily_call_counts([local_day_bounds(d, tz) for d in days],
                                                 include_tests=include_tests)
    fmt = formatter(owner)
    bars = [Bar(label=d.strftime("%d"), value=c,
                title=fmt.words(ntr("%(day)s: %(num)d call", "%(day)s: %(num)d calls", c, day=fmt.date(d, "MMMEd"))))
            for d, c in zip(days, counts, strict=True)]
    title = fmt.words(tr("Calls per day, last %(days)s days", days=CHART_DAYS))
    # Drawn twice, the page's CSS showing one: an SVG scales its text with it, so one drawing is either
    # unreadably small on a phone or huge on a desktop. The narrow one labels every other day.
    chart = Markup(
        bar_chart(bars, title=title, css_class="chart chart-wide")
        + bar_chart([Bar(label=b.label if (len(bars) - 1 - i) % 2 == 0 else "", title=b.title, value=b.value)
                     for i, b in enumerate(bars)], title=title, width=360, height=200, css_class="chart chart-narrow")
    )
    totals_today, totals_month, tests_this_month = await owner_scope.overview_totals(
        day_window, month_window, include_tests=include_tests)
    response = page(
        "dashboard/overview.html",
        owner,
        today=asdict(totals_today),
        month=asdict(totals_month),
        month_label=fmt.month(month_first),
        chart=chart,
        chart_total=sum(counts),
        live_count=await owner_scope.live_session_count(),
        recent=await owner_scope.recent_calls(5),
        include_tests=include_tests,
        tests_this_month=tests_this_month,
        attention=await owner_scope.inbox.attention(*day_window),
    )
    # `/` is a public path (the landing page), so nothing would mark the owner's dashboard private on its own.
    response.headers["Cache-Control"] = "no-store"
    return response


@get("/", name="dashboard:overview")
async def overview(request: Request[Any, Any, Any], db: Database, settings: Settings) -> Any:
    # Public on the guard's list (app.auth.access): signed out, the landing page and nothing private;
    # signed in, the owner's dashboard through the same cookie check the guard uses.
    try:
        owner = await provide_owner(request)
    except NotAuthorizedException:
        return landing_page(settings)
    if owner.business is None:
        return Redirect(path="/onboarding")
    owner_scope = await provide_owner_scope(owner.business, db)
    return await _overview(owner, owner.business, owner_scope, include_tests=request.query_params.get("tests") == "1")


ROUTES = [overview]
