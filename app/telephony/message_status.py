"""Twilio's status callback for the texts the inbox sends (public, trusted only with a valid signature)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post

from app.db.engine import Database
from app.inbox.channels import MESSAGE_STATUS_PATH
from app.inbox.delivery import record_delivery
from app.settings import Settings
from app.telephony.routes import verified_form


@post(MESSAGE_STATUS_PATH, name="twilio:message-status", status_code=204)
async def message_status(request: Request[Any, Any, Any], settings: Settings, db: Database) -> None:
    form = await verified_form(request, settings)
    await record_delivery(db, form.get("MessageSid"), form.get("MessageStatus"), form.get("ErrorCode"))


ROUTES = [message_status]
