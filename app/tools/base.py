"""What every business tool shares: the call's context, the tool shape, and structured errors.

A tool is a JSON schema the model sees plus an async function over `BusinessScope`. The scope fixes the
business, and the caller's phone (when the channel knows it) fixes whose appointments can be touched, so no
argument the model invents can reach another business or another caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from app.db.hours import zone
from app.db.models import Business
from app.db.phone import PhoneError, normalize_phone
from app.db.services import BusinessScope, ServiceError

log = logging.getLogger(__name__)



# The caller's phone as a tool argument: the supervisor may pass what the caller said; a phone line's own
# caller id wins (see the tools that use it).
PHONE_PARAM: dict[str, str] = {
    "type": "string",
    "description": "The caller's phone number as they said it (ignored when the line already knows the caller's "
    "number).",
}

class ToolError(ServiceError):
    """Bad arguments from the model; goes back to it as a structured error so it can ask or retry."""

    code = "invalid_arguments"


@dataclass(slots=True)
class ToolContext:
    scope: BusinessScope
    business: Business
    call_id: UUID | None = None
    #: E.164 number the channel vouches for (Twilio `From`); None for browser calls.
    caller_phone: str | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.business.timezone)

    def phone_for(self, given: str | None) -> str:
        """The phone that identifies the caller: the channel's own number wins over anything said."""
        if self.caller_phone:
            return self.caller_phone
        if not given:
            raise ToolError("the caller's phone number is needed; ask the caller for it")
        try:
            return normalize_phone(given)
        except PhoneError as exc:
            raise ToolError(str(exc)) from None

    def local_datetime(self, value: Any, name: str = "start") -> datetime:
        """ISO 8601 in; naive times are the business's local wall clock."""
        if not isinstance(value, str) or not value.strip():
            raise ToolError(f"{name} must be an ISO 8601 date-time like 2026-05-04T10:00")
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ToolError(f"{name} must be an ISO 8601 date-time like 2026-05-04T10:00, got {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return moment

    def local_date(self, value: Any, name: str = "date") -> date:
        if not isinstance(value, str):
            raise ToolError(f"{name} must be a date like 2026-05-04")
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ToolError(f"{name} must be a date like 2026-05-04, got {value!r}") from None

    def iso(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).isoformat(timespec="minutes")


ToolFn = Callable[[ToolContext, Mapping[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: ToolFn

    def schema(self) -> dict[str, Any]:
        """The Responses API function-tool shape."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": False,
        }


def error_result(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def parse_arguments(raw: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ToolError("arguments are not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ToolError("arguments must be a JSON object")
    return parsed


def text_arg(args: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ToolError(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise ToolError(f"{name} must be text")
    return value.strip()


def uuid_arg(args: Mapping[str, Any], name: str) -> UUID:
    try:
        return UUID(text_arg(args, name))
    except ValueError:
        raise ToolError(f"{name} must be an id returned by an earlier tool call") from None
