"""What every business tool shares: the call's context, the tool shape, and structured errors.

A tool is a JSON schema the model sees plus an async function over `BusinessScope`. The scope fixes the
business, and the number the channel vouches for (`ToolContext.caller_phone`: Twilio's `From` when it is a
real number, or the test caller the owner picked on /test) fixes whose records can be read or changed. A
number the caller merely *says* never identifies anyone: it is good for a new booking or a message (stored as
unverified), and every identity-bound tool refuses without a vouched number (`CallerNotVerified`), so no
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
from app.db.phone import PhoneError, business_region, normalize_phone
from app.db.services import BusinessScope, NotVerified, ServiceError
from app.i18n.dates import spoken_datetime
from app.i18n.languages import DEFAULT_LANGUAGE

log = logging.getLogger(__name__)



# The caller's phone as a tool argument: the supervisor may pass what the caller said; a phone line's own
# caller id wins (see the tools that use it).
PHONE_PARAM: dict[str, str] = {
    "type": "string",
    "description": "The caller's phone number as they said it (ignored when the line already knows the caller's "
    "number).",
}

#: What the supervisor is told when a tool needs a caller-ID the line did not give; it can say this as is.
NOT_VERIFIED_MESSAGE = (
    "The line shows no caller ID, so this caller's records can't be looked up or changed. Tell them: \"I can't "
    "look that up without your caller ID; I can take a message or put you through.\" A new booking still works "
    "with the number they give."
)


class ToolError(ServiceError):
    """Bad arguments from the model; goes back to it as a structured error so it can ask or retry."""

    code = "invalid_arguments"


class CallerNotVerified(NotVerified):
    """An identity-bound tool on a line with no vouched number (withheld, SIP, browser without a test caller)."""

    def __init__(self) -> None:
        super().__init__(NOT_VERIFIED_MESSAGE)


@dataclass(slots=True)
class ToolContext:
    scope: BusinessScope
    business: Business
    call_id: UUID | None = None
    #: E.164 number the channel vouches for (Twilio `From` when a real number; the owner's chosen test caller
    #: on /test); None when nobody is identified (withheld number, SIP or client address).
    caller_phone: str | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: Issue 16: the call's language (BCP-47); it changes when the caller switches to another offered language,
    #: and the times the tools read out are worded in it
    language: str = DEFAULT_LANGUAGE

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.business.timezone)

    @property
    def verified(self) -> bool:
        return self.caller_phone is not None

    def vouched_phone(self) -> str:
        """The caller's own number for identity-bound tools; refuses when the line vouches for none."""
        if self.caller_phone is None:
            raise CallerNotVerified()
        return self.caller_phone

    def phone_for(self, given: str | None) -> str:
        """A number to book under or call back on: the channel's own number wins over anything said; without
        one, what the caller said, read in the business's region (unverified: see `verified`)."""
        if self.caller_phone:
            return self.caller_phone
        if not given:
            raise ToolError("the caller's phone number is needed; ask the caller for it")
        try:
            text = given.strip()
            region = None if text.startswith(("+", "00")) else business_region(
                self.business.phone_number, self.business.timezone
            )
            return normalize_phone(text, region)
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

    def spoken(self, moment: datetime) -> str:
        """The local date and time worded in the call's language, for the receptionist to read out."""
        return spoken_datetime(moment, self.language, self.tz)


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
