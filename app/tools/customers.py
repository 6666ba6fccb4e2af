"""Customers (found by the caller's own number) and messages for the business.

What a tool says about a person is what the conversation needs: their name and their own upcoming
appointments - never the owner's notes, an email, or anyone else's record, whatever the model asks for.
Reading a customer needs the number the line vouches for; so does changing one. A caller without caller-ID
can still be added as a new customer (unverified) and can always leave a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db.services import URGENCIES, NotVerified
from app.tools.base import PHONE_PARAM, CallerNotVerified, Tool, ToolContext, text_arg
from app.tools.booking import appointment_view


async def find_customer(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.vouched_phone()
    customer = await ctx.scope.customer_by_phone(phone)
    if customer is None:
        return {"found": False}
    upcoming = await ctx.scope.upcoming_for_phone(phone, now=ctx.now())
    return {"found": True, "name": customer.name, "upcoming_appointments": [appointment_view(ctx, a) for a in upcoming]}


async def save_customer(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.phone_for(args.get("phone"))
    name = text_arg(args, "name", required=False) or None
    try:
        customer = await ctx.scope.save_customer(
            phone,
            name=name,
            email=text_arg(args, "email", required=False) or None,
            notes=text_arg(args, "notes", required=False) or None,
            verified=ctx.verified,
        )
    except NotVerified:
        # Overwriting an existing customer needs their own caller-ID; say nothing about who they are.
        raise CallerNotVerified() from None
    return {"saved": True, "name": customer.name, "verified": ctx.verified}


async def take_message(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    given_phone = text_arg(args, "phone", required=False)
    phone = ctx.phone_for(given_phone) if (ctx.caller_phone or given_phone) else None
    urgency = text_arg(args, "urgency", required=False) or "normal"
    message = await ctx.scope.take_message(
        text_arg(args, "message"),
        caller_name=text_arg(args, "name", required=False),
        caller_phone=phone,
        call_id=ctx.call_id,
        urgency=urgency if urgency in URGENCIES else "normal",
        callback_requested=args.get("callback_requested") is True,
    )
    return {"saved": True, "message_id": str(message.id)}


FIND_CUSTOMER = Tool(
    name="find_customer",
    description="Whether the caller is a known customer (by the number the line shows): their name and upcoming "
    "appointments. Refuses when the caller's number is withheld.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    fn=find_customer,
)

SAVE_CUSTOMER = Tool(
    name="save_customer",
    description="Create the caller's customer record, or update their name, email or notes (updating an existing "
    "customer needs the caller's own caller ID).",
    parameters={
        "type": "object",
        "properties": {
            "phone": PHONE_PARAM,
            "name": {"type": "string"},
            "email": {"type": "string"},
            "notes": {"type": "string"},
        },
        "additionalProperties": False,
    },
    fn=save_customer,
)

TAKE_MESSAGE = Tool(
    name="take_message",
    description="Leave a message for the business owner (for anything the receptionist cannot handle).",
    parameters={
        "type": "object",
        "properties": {
            "message": {"type": "string", "description": "What the caller wants, in a sentence or two."},
            "name": {"type": "string"},
            "phone": PHONE_PARAM,
            "urgency": {"type": "string", "enum": list(URGENCIES),
                        "description": "urgent only when the caller says it can't wait."},
            "callback_requested": {"type": "boolean", "description": "The caller asked to be called back."},
        },
        "required": ["message"],
        "additionalProperties": False,
    },
    fn=take_message,
)
