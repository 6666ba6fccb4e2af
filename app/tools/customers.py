"""Customers (found by phone) and messages for the business."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.db.models import Customer
from app.db.services import URGENCIES
from app.tools.base import PHONE_PARAM, Tool, ToolContext, text_arg


def customer_view(customer: Customer) -> dict[str, Any]:
    return {
        "customer_id": str(customer.id),
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "notes": customer.notes,
    }


async def find_customer(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.phone_for(args.get("phone"))
    customer = await ctx.scope.customer_by_phone(phone)
    return {"found": customer is not None, "customer": customer_view(customer) if customer else None}


async def save_customer(ctx: ToolContext, args: Mapping[str, Any]) -> dict[str, Any]:
    phone = ctx.phone_for(args.get("phone"))
    customer = await ctx.scope.save_customer(
        phone,
        name=text_arg(args, "name", required=False) or None,
        email=text_arg(args, "email", required=False) or None,
        notes=text_arg(args, "notes", required=False) or None,
    )
    return {"saved": True, "customer": customer_view(customer)}


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
    description="Look up the caller's customer record by phone number.",
    parameters={"type": "object", "properties": {"phone": PHONE_PARAM}, "additionalProperties": False},
    fn=find_customer,
)

SAVE_CUSTOMER = Tool(
    name="save_customer",
    description="Create the caller's customer record, or update their name, email or notes.",
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
