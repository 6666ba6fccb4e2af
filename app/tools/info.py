"""Facts about the business: hours, services, address."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from app.db.hours import describe_hours
from app.tools.base import Tool, ToolContext

CLOSURE_HORIZON_DAYS = 60


async def get_business_info(ctx: ToolContext, _args: Mapping[str, Any]) -> dict[str, Any]:
    business = await ctx.scope.business()
    return {
        "name": business.name,
        "address": business.address,
        "timezone": business.timezone,
        "now": ctx.iso(ctx.now()),
        "hours": describe_hours(business.weekly_hours or {}),
        "services": [
            {"name": s["name"], "minutes": s["minutes"], "price": s.get("price")} for s in business.services or []
        ],
        **await _calendar_facts(ctx),
    }


async def _calendar_facts(ctx: ToolContext) -> dict[str, Any]:
    """Issue 15: staff and rooms, closures in the coming weeks, and the booking window."""
    today = ctx.now().astimezone(ctx.tz).date()
    setup = await ctx.scope.setup(closures_from=today)
    facts: dict[str, Any] = {}
    if setup.resources:
        facts["staff"] = [
            {"name": r.name, "kind": r.kind, "does": r.services or "every service",
             **({"hours": describe_hours(r.weekly_hours)} if r.weekly_hours is not None else {})}
            for r in setup.resources
        ]
    notes = [setup.closure_note(c.day, c.resource_id) for c in setup.closures
             if today <= c.day <= today + timedelta(days=CLOSURE_HORIZON_DAYS)]
    if notes:
        facts["closures_and_changed_hours"] = list(dict.fromkeys(n for n in notes if n))
    rules = setup.rules
    facts["booking_window"] = (
        f"bookings at least {rules.min_notice} minutes ahead and at most {rules.max_days_ahead} days ahead"
    )
    return facts


GET_BUSINESS_INFO = Tool(
    name="get_business_info",
    description="The business's name, address, opening hours (local time), services with length and price, "
    "staff and rooms, closures and changed hours in the coming weeks, and the current local date and time.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    fn=get_business_info,
)
