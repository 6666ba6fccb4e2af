"""The supervisor's tool set by name, and the one way a tool call is run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.db.hours import HoursError
from app.db.services import ServiceError
from app.tools.base import Tool, ToolContext, error_result, parse_arguments
from app.tools.booking import (
    BOOK_APPOINTMENT,
    CANCEL_APPOINTMENT,
    CHECK_AVAILABILITY,
    FIND_APPOINTMENTS,
    RESCHEDULE_APPOINTMENT,
)
from app.tools.confirmations import CONFIRM_APPOINTMENT
from app.tools.customers import FIND_CUSTOMER, SAVE_CUSTOMER, TAKE_MESSAGE
from app.tools.info import GET_BUSINESS_INFO

log = logging.getLogger(__name__)

TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        GET_BUSINESS_INFO,
        CHECK_AVAILABILITY,
        BOOK_APPOINTMENT,
        FIND_APPOINTMENTS,
        CANCEL_APPOINTMENT,
        RESCHEDULE_APPOINTMENT,
        CONFIRM_APPOINTMENT,  # issue 16
        FIND_CUSTOMER,
        SAVE_CUSTOMER,
        TAKE_MESSAGE,
    )
}


def tool_schemas() -> list[dict[str, Any]]:
    return [t.schema() for t in TOOLS.values()]


async def run_tool(ctx: ToolContext, name: str, raw_arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Run one tool call; never raises. Refusals and bad arguments come back as {"error": {code, message}}."""
    tool = TOOLS.get(name)
    if tool is None:
        return error_result("unknown_tool", f"there is no tool called {name!r}")
    try:
        return await tool.fn(ctx, parse_arguments(raw_arguments))
    except ServiceError as exc:  # ToolError included: bad arguments go back for the model to fix
        return error_result(exc.code, exc.message)
    except HoursError as exc:
        return error_result("invalid", str(exc))
    except Exception:
        log.exception("tool %s failed", name)
        return error_result("internal_error", "the tool failed unexpectedly; offer to take a message")
