"""Issue 16: the customer confirms an appointment (on the receptionist's confirmation call, or any call).

Identity-bound like cancelling: only the number the line vouches for may confirm, and only its own booking.
On an outbound call the vouched number is the number the service dialled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.tools.base import Tool, ToolContext, uuid_arg


async def confirm_appointment(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.vouched_phone()
    appointment = await ctx.scope.confirm(uuid_arg(args, "appointment_id"), phone, call_id=ctx.call_id)
    return {"confirmed": True, "appointment_id": str(appointment.id)}


CONFIRM_APPOINTMENT = Tool(
    name="confirm_appointment",
    description="Record that the caller will come to one of their own appointments, as booked. Only for the "
    "number the line shows (caller ID); refuses when the caller's number is withheld.",
    parameters={
        "type": "object",
        "properties": {"appointment_id": {"type": "string"}},
        "required": ["appointment_id"],
        "additionalProperties": False,
    },
    fn=confirm_appointment,
)
