"""Settings → Notifications: what the owner is told and how, caller confirmations and reminders, and a
"send a test" button per channel that reports what the mail server or Twilio answered.

Its own section and POST route (the main business form is separate); the settings page pulls it in with htmx.
A test goes through the same outbox and job as a real notification, so it proves the real path.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get, post
from litestar.response import Template

from app import audit
from app.auth.deps import Owner
from app.dashboard.common import is_htmx, page
from app.db.engine import Database
from app.db.inbox import InboxScope
from app.db.models import Business, Notification, NotificationChannel, NotificationSettings, NotificationStatus
from app.db.owner_queries import OwnerScope
from app.db.phone import PhoneError, normalize_phone
from app.i18n.text import message_of, tr
from app.inbox.outbox import DEFAULTS
from app.inbox.schedule import TimeOfDayError, parse_time_of_day
from app.settings import Settings

BOOLEANS = ("email_enabled", "sms_enabled", "on_follow_up", "on_bookings", "on_failures", "digest_enabled",
            "confirmations_enabled", "reminders_enabled")
TEST_WAIT_SECONDS = 10.0


@dataclass(slots=True)
class NotificationForm:
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def form_from(prefs: NotificationSettings) -> NotificationForm:
    return NotificationForm({k: getattr(prefs, k) for k in DEFAULTS})


def parse_form(data: Any) -> NotificationForm:
    values: dict[str, Any] = {k: data.get(k) in {"on", "true", "1"} for k in BOOLEANS}
    errors: dict[str, str] = {}
    email = str(data.get("email_to") or "").strip()
    if email and ("@" not in email or " " in email or len(email) > 320):
        errors["email_to"] = tr("enter an email address like owner@example.com, or leave it empty for your sign-in "
                                "address")
    values["email_to"] = email
    sms = str(data.get("sms_to") or "").strip()
    if sms:
        try:
            sms = normalize_phone(sms)
        except PhoneError as exc:
            errors["sms_to"] = message_of(exc)
    elif values["sms_enabled"]:
        errors["sms_to"] = tr("enter the mobile number to text, or turn texts off")
    values["sms_to"] = sms
    for name in ("digest_time", "reminder_time"):
        raw = str(data.get(name) or "").strip() or DEFAULTS[name]
        try:
            values[name] = parse_time_of_day(raw).strftime("%H:%M")
        except TimeOfDayError as exc:
            errors[name] = message_of(exc)
            values[name] = raw
    return NotificationForm(values, errors)


def _section(request: Request[Any, Any, Any], owner: Owner, settings: Settings, form: NotificationForm, *,
             saved: bool = False, test: dict[str, str] | None = None) -> Template:
    context = {"nform": form, "saved": saved, "test": test, "smtp_configured": settings.smtp_configured,
               "twilio_configured": settings.twilio_configured}
    template = "dashboard/inbox/_notification_settings.html" if is_htmx(request) else (
        "dashboard/inbox/notification_settings.html")
    return page(template, owner, **context)


@get("/settings/notifications", name="dashboard:notification-settings")
async def notification_settings(request: Request[Any, Any, Any], owner: Owner, owner_scope: OwnerScope,
                                settings: Settings) -> Template:
    prefs = await owner_scope.inbox.preferences()
    return _section(request, owner, settings, form_from(prefs))


@post("/settings/notifications", name="dashboard:notification-settings-save", status_code=200)
async def notification_settings_save(request: Request[Any, Any, Any], owner: Owner, business: Business,
                                     owner_scope: OwnerScope, db: Database, settings: Settings) -> Template:
    form = parse_form(await request.form())
    if not form.ok:
        return _section(request, owner, settings, form)
    prefs, changed = await owner_scope.inbox.save_preferences(form.values, datetime.now(UTC))
    if changed:
        # Field names only: the addresses themselves stay out of the log.
        await audit.record(db, "notifications.changed", business_id=business.id, user=owner.user, request=request,
                           detail={"fields": sorted(changed)})
    _poke(request)
    return _section(request, owner, settings, form_from(prefs), saved=True)


def _poke(request: Request[Any, Any, Any]) -> None:
    jobs = request.app.state.get("jobs")
    if jobs is not None:
        jobs.poke()


@post("/settings/notifications/test", name="dashboard:notification-test", status_code=200)
async def notification_test(request: Request[Any, Any, Any], owner: Owner, business: Business,
                            owner_scope: OwnerScope, settings: Settings) -> Template:
    data = await request.form()
    channel = str(data.get("channel") or "")
    inbox = owner_scope.inbox
    prefs = await inbox.preferences()
    form = form_from(prefs)
    if channel not in {c.value for c in NotificationChannel}:
        return _section(request, owner, settings, form, test={"channel": channel, "outcome": "failed",
                                                              "text": tr("Unknown channel.")})
    key = f"test:{business.id}:{channel}:{uuid.uuid4()}"
    if await inbox.queue_test(channel, prefs, key) is None:
        return _section(request, owner, settings, form, test={
            "channel": channel, "outcome": "failed",
            "text": tr("No address to send to: enter one above and save first.")})
    _poke(request)
    notification = await _wait_settled(inbox, key)
    return _section(request, owner, settings, form, test=_report(channel, notification))


async def _wait_settled(inbox: InboxScope, key: str) -> Notification | None:
    deadline = time.monotonic() + TEST_WAIT_SECONDS
    while True:
        n = await inbox.notification_by_key(key)
        if n is None or n.status != NotificationStatus.PENDING.value or n.attempts > 0:
            return n
        if time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.2)


def _report(channel: str, n: Notification | None) -> dict[str, str]:
    email = channel == "email"
    if n is None:
        return {"channel": channel, "outcome": "failed", "text": tr("The test could not be queued.")}
    to = n.recipient
    if n.status in {NotificationStatus.SENT.value, NotificationStatus.DELIVERED.value}:
        sent = (tr("Test email sent to %(to)s: the mail server accepted it.", to=to) if email
                else tr("Test text sent to %(to)s: Twilio accepted it.", to=to))
        return {"channel": channel, "outcome": "ok", "text": sent}
    if n.status == NotificationStatus.PENDING.value:
        if n.last_error:
            later = (tr("Test email to %(to)s is not sent yet; it will be retried. The last try failed: %(why)s.",
                        to=to, why=n.last_error) if email else
                     tr("Test text to %(to)s is not sent yet; it will be retried. The last try failed: %(why)s.",
                        to=to, why=n.last_error))
        else:
            later = (tr("Test email to %(to)s is not sent yet; it will be retried.", to=to) if email
                     else tr("Test text to %(to)s is not sent yet; it will be retried.", to=to))
        return {"channel": channel, "outcome": "warn", "text": later}
    why = n.last_error or n.status
    failed = (tr("Test email to %(to)s was not sent: %(why)s.", to=to, why=why) if email
              else tr("Test text to %(to)s was not sent: %(why)s.", to=to, why=why))
    return {"channel": channel, "outcome": "failed", "text": failed}


ROUTES = [notification_settings, notification_settings_save, notification_test]
