"""Billing: the plan and its period, minutes used of included (with projection and overage), warnings, what
the calls cost the operator (margin view), recent Polar orders, and the Upgrade / Manage billing buttons.

Every query reads only the columns it shows (no transcripts or usage blobs), scoped to the owner's business,
through the (business_id, started_at) index. Polar is asked for the orders with a short timeout; when it
can't answer, the page says so and shows the orders the webhooks recorded.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.response import Template

from app.auth.deps import Owner
from app.billing.polar import OrderLine, PolarRefused, PolarUnavailable, get_polar
from app.billing.usage import BillingScope, PeriodUsage, page_figures
from app.billing.warnings import period_key
from app.dashboard.common import Formatter, business_zone, local_day_bounds, page
from app.db.engine import Database
from app.db.models import Business
from app.db.owner_queries import OwnerScope
from app.i18n.languages import for_owner
from app.i18n.text import tr
from app.settings import Settings

log = logging.getLogger(__name__)

PER_CALL_LIMIT = 200
ORDERS_TIMEOUT_SECONDS = 3.0
_ERRORS = {
    "checkout": tr("Polar couldn't start the checkout just now. Nothing was charged; please try again in a minute."),
    "portal": tr("Polar's billing portal couldn't be opened just now. Please try again in a minute."),
    "unknown-plan": tr("That plan isn't offered any more. Choose one of the plans below."),
}

def _cost_window(business: Business, usage: PeriodUsage, now: datetime) -> tuple[datetime, datetime | None, str]:
    """The paid plan's period; on the trial (which has no period) the calendar month in the business's zone."""
    period = usage.period
    if not period.plan.is_trial:
        return period.start, period.end, tr("This billing period")
    tz = business_zone(business.timezone)
    first = now.astimezone(tz).date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    month = Formatter(tz, language=for_owner(business.languages)).month(first)
    return local_day_bounds(first, tz)[0], local_day_bounds(following, tz)[0], tr("%(month)s so far", month=month)


async def _period_figures(scope: BillingScope, business: Business, usage: PeriodUsage,
                         now: datetime) -> dict[str, Any]:
    period = usage.period
    start, end, label = _cost_window(business, usage, now)
    figures = await page_figures(scope, period, start, end, call_limit=PER_CALL_LIMIT,
                                 count_unreported=period.subscription is not None and not period.plan.is_trial)
    return {"cost_label": label, "cost_from": start, **figures}


async def _orders(request: Request[Any, Any, Any], owner: Owner) -> tuple[list[OrderLine] | None, str | None]:
    gateway = get_polar(request.app)
    if not gateway.configured:
        return None, None
    try:
        async with asyncio.timeout(ORDERS_TIMEOUT_SECONDS):
            return await gateway.recent_orders(str(owner.user.id)), None
    except (PolarUnavailable, PolarRefused, TimeoutError) as exc:
        log.warning("orders from Polar unavailable: %s", type(exc).__name__)
        return None, tr("Polar didn't answer just now, so these are the payments this service has recorded.")


@get("/billing", name="dashboard:billing")
async def billing_page(request: Request[Any, Any, Any], owner: Owner, business: Business, db: Database,
                       settings: Settings, owner_scope: OwnerScope) -> Template:
    scope = BillingScope(db.session_maker, business.id, settings)
    now = datetime.now(UTC)
    usage = await scope.usage(await scope.period(now))
    figures = await _period_figures(scope, business, usage, now)
    subscription = usage.period.subscription
    orders, orders_error = (await _orders(request, owner)) if subscription is not None else (None, None)
    plan = usage.period.plan
    # How each of this period's warnings reached the owner (email / text, sent or failed, and why).
    told: dict[int, list[Any]] = {}
    for n in await owner_scope.inbox.notifications_keyed(period_key(business.id, usage.period.start) + ":"):
        told.setdefault(int((n.details or {}).get("threshold", 0)), []).append(n)
    return page(
        "dashboard/billing.html",
        owner,
        plan=plan,
        usage=usage,
        percent=min(100, round(usage.fraction * 100)),
        projected=usage.projected_minutes(now),
        subscription=subscription,
        paid_plans=settings.polar_plans,
        polar_configured=bool(settings.polar_access_token),
        orders=orders,
        orders_error=orders_error,
        error=_ERRORS.get(str(request.query_params.get("error") or "")),
        checkout_returned=bool(request.query_params.get("checkout_id")),
        warning_notifications=told,
        **figures,
    )


ROUTES = [billing_page]
