"""Facts about the business: hours, services, address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db.hours import describe_hours
from app.tools.base import Tool, ToolContext


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
    }


GET_BUSINESS_INFO = Tool(
    name="get_business_info",
    description="The business's name, address, opening hours (local time), services with length and price, "
    "and the current local date and time.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    fn=get_business_info,
)
