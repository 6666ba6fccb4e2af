"""The audit log's one entry point: `record(...)` appends who did what, when and from where.

Rows are only ever inserted (there is no update or delete anywhere in the app); the owner reads their
business's entries on `/audit`. Other rooms call `record` for their own actions with an `action` from
`ACTIONS` (add one there with its owner-facing wording). The client address is the one the request came
from after `app.web.proxy` resolved trusted forwarding headers, so a proxy's own address is not logged
for everyone. Details hold what changed, never secrets or a caller's personal data.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection

from app.db.engine import Database
from app.db.models import AuditEntry, User
from app.i18n.text import tr

log = logging.getLogger(__name__)

OWNER = "owner"
OPERATOR = "operator"

# action -> how the owner's activity page words it
ACTIONS: dict[str, str] = {
    "sign_in": tr("Signed in"),
    "sign_out": tr("Signed out"),
    "sign_out_everywhere": tr("Signed out everywhere (every browser's sign-in ended)"),
    "business.created": tr("Created the business"),
    "settings.changed": tr("Changed settings"),
    "number.changed": tr("Changed the business phone number"),
    "number.assigned": tr("Phone number assigned"),
    "number.released": tr("Phone number released"),
    "appointment.cancelled": tr("Cancelled an appointment"),
    "calls.exported": tr("Exported calls as CSV"),
    "notifications.changed": tr("Changed notification settings"),
    "billing.changed": tr("Changed the plan or billing"),
    # Issue 16: calling out.
    "outbound.call_back": tr("Called a customer back (click to call)"),
    "outbound.callback_scheduled": tr("Scheduled a callback by the receptionist"),
    "outbound.cancelled": tr("Cancelled a scheduled outbound call"),
    "outbound.settings_changed": tr("Changed the calling-out settings"),
    "outbound.call_opt_out": tr("Changed a customer's opt-out from calls"),
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def client_ip(connection: ASGIConnection[Any, Any, Any, Any] | None) -> str | None:
    client = connection.scope.get("client") if connection is not None else None
    return str(client[0])[:64] if client else None


async def record(
    db: Database,
    action: str,
    *,
    business_id: UUID | None,
    user: User | None = None,
    request: ASGIConnection[Any, Any, Any, Any] | None = None,
    actor_kind: str = OWNER,
    actor_label: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. `user` is the owner acting (None for the operator, who names itself in
    `actor_label`); `request` gives the client address (None from the operator CLI)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to app.audit.ACTIONS")
    entry = AuditEntry(
        business_id=business_id,
        actor_user_id=user.id if user is not None else None,
        actor_kind=actor_kind,
        actor_label=(actor_label if actor_label is not None else (user.email if user is not None else ""))[:320],
        action=action,
        detail=_jsonable(detail or {}),
        client_ip=client_ip(request),
    )
    async with db.session() as s, s.begin():
        s.add(entry)
    log.info("audit: %s by %s %s", action, actor_kind, entry.actor_user_id or "-")
    return entry


def describe(entry: AuditEntry) -> str:
    return ACTIONS.get(entry.action, entry.action)
