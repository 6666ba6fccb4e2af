"""Polar webhooks → the subscription state the service acts on (issue 13, item 3).

- Verified with the `standardwebhooks` package (`webhook-id`, `webhook-timestamp` within 5 minutes,
  `webhook-signature` = HMAC-SHA256 over "id.timestamp.body", keyed by the secret's UTF-8 bytes as Polar
  does); a bad signature or a stale timestamp is 403 and changes nothing. The payload is then loaded into
  polar-sdk's typed objects, so an incomplete one is refused (400) rather than half-applied.
- Idempotent on `webhook-id`: the delivery row is inserted in the same transaction as its effect, so a
  redelivery (Polar retries up to 10 times) finds it and changes nothing.
- Never backwards: a subscription's state is replaced only by an event whose `modified_at` is not older than
  the one that wrote the kept state, so `canceled` delivered before the earlier `updated` ends right.
- The customer is found by `external_id` = our user id (set at checkout), which names the owner's business.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app import audit
from app.billing.plans import plan_for_product
from app.db.engine import Database
from app.db.models import Billing, BillingStatus, BillingSubscription, Business, PolarWebhookDelivery
from app.jobs import job_id_for
from app.settings import Settings

log = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = {
    "subscription.created", "subscription.active", "subscription.updated", "subscription.canceled",
    "subscription.uncanceled", "subscription.revoked", "subscription.past_due", "subscription.cycled",
    "subscription.paused", "subscription.resumed",
}


@functools.cache
def payload_classes() -> dict[str, Any]:
    """polar-sdk's payload class per event `type` (one Literal per member of its WebhookPayload union).

    Each event is loaded into its own class, not the 42-member union: adaptix builds a loader per target
    type on first use, measured at 20 s for the union on a busy machine against 0.3-1.8 s for one class."""
    from polar.v2026_04.webhooks import WebhookPayload

    return {typing.get_args(typing.get_type_hints(member)["type"])[0]: member
            for member in typing.get_args(WebhookPayload)}


def warm_loaders() -> None:
    """Build the loaders of the events this service handles (in a thread at start-up, not on the loop)."""
    from polar.base import deserialize

    classes = payload_classes()
    for event_type in (*SUBSCRIPTION_EVENTS, "order.paid"):
        cls = classes.get(event_type)
        if cls is not None:
            try:
                deserialize({}, cls)  # fails on the empty payload, after building and caching the loader
            except Exception:
                continue


@dataclass(frozen=True, slots=True)
class WebhookResult:
    status_code: int
    outcome: str


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


async def _business_for_customer(s: AsyncSession, external_id: str | None) -> UUID | None:
    try:
        owner_id = UUID(str(external_id))
    except ValueError:
        return None
    return await s.scalar(select(Business.id).where(Business.owner_id == owner_id))


def _signing_keys(secret: str) -> list[bytes]:
    """Polar keys the HMAC with the secret's UTF-8 bytes; a Standard Webhooks `whsec_…` secret is base64."""
    keys = [secret.encode()]
    try:
        decoded = base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded and decoded != keys[0]:
        keys.append(decoded)
    return keys


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    """Standard Webhooks check (signature and the 5-minute timestamp window); raises WebhookVerificationError."""
    lowered = {k.lower(): v for k, v in headers.items()}
    wanted = {k: lowered.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    error: Exception | None = None
    for key in _signing_keys(secret):
        try:
            Webhook(key).verify(body, wanted, json_parse=False)
            return
        except WebhookVerificationError as exc:
            error = exc
            if "signature" not in str(exc).lower():
                break  # missing headers or a timestamp outside the window: the same for every key
        except (ValueError, binascii.Error):  # a malformed signature header or a body that isn't UTF-8
            raise WebhookVerificationError("malformed signature") from None
    raise WebhookVerificationError(str(error) if error else "no signing key")


def load(body: bytes) -> tuple[str, Any]:
    """The event's type and its typed payload (polar-sdk's WebhookPayload).

    polar-sdk 1.0.2 types `customer.state_changed`'s `active_subscriptions[].status` as a benefit grant's
    status ("granted"/"disabled"), so Polar's real payload ("active") fails to load: that one event is read
    from the verified JSON by hand, with the same field names."""
    data = json.loads(body)
    event_type = data.get("type") if isinstance(data, dict) else None
    if not isinstance(event_type, str):
        raise ValueError("no event type")
    if event_type == "customer.state_changed":
        state = data["data"]
        subs = [SimpleNamespace(**sub) for sub in state.get("active_subscriptions") or []]
        return event_type, SimpleNamespace(type=event_type, timestamp=data.get("timestamp"),
                                           data=SimpleNamespace(id=state["id"], external_id=state.get("external_id"),
                                                                active_subscriptions=subs))
    cls = payload_classes().get(event_type)
    if cls is None:
        raise LookupError(event_type)
    from polar.base import PolarDeserializationError, deserialize

    try:
        return event_type, deserialize(data, cls)
    except PolarDeserializationError as exc:
        raise ValueError("incomplete payload") from exc


async def handle(db: Database, settings: Settings, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
    secret = settings.polar_webhook_secret
    if not secret:
        log.error("Polar webhook refused: POLAR_WEBHOOK_SECRET is not set, so signatures can't be checked")
        return WebhookResult(503, "POLAR_WEBHOOK_SECRET is not set")
    try:
        verify(body, headers, secret)
    except WebhookVerificationError as exc:
        log.warning("Polar webhook refused: %s", exc)
        return WebhookResult(403, "invalid signature")
    try:
        event_type, payload = load(body)
    except LookupError as exc:
        if isinstance(exc, KeyError):
            log.warning("Polar webhook refused: the payload lacks %s", exc)
            return WebhookResult(400, "incomplete payload")
        return WebhookResult(202, f"event type {exc} is not one this service uses")
    except ValueError:
        log.warning("Polar webhook refused: the payload is not a complete event of its type")
        return WebhookResult(400, "incomplete payload")
    webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    now = datetime.now(UTC)
    async with db.session() as s, s.begin():
        inserted = await s.execute(
            insert(PolarWebhookDelivery)
            .values(id=job_id_for(f"polar-webhook:{webhook_id}"), webhook_id=webhook_id[:120],
                    event_type=event_type[:64], outcome="", created_at=now, updated_at=now)
            .on_conflict_do_nothing()
        )
        if inserted.rowcount != 1:  # type: ignore[attr-defined]
            return WebhookResult(200, "already handled")
        changes: list[tuple[UUID, dict[str, Any]]] = []
        outcome = await _apply(s, settings, event_type, payload, changes)
        await s.execute(
            update(PolarWebhookDelivery).where(PolarWebhookDelivery.webhook_id == webhook_id[:120])
            .values(outcome=outcome[:200])
        )
    log.info("Polar webhook %s (%s): %s", webhook_id, event_type, outcome)
    for business_id, detail in changes:
        # The owner's activity page shows plan changes Polar reports (made in its checkout or portal).
        await audit.record(db, "billing.changed", business_id=business_id, actor_kind="polar", actor_label="Polar",
                           detail={"event": event_type, **detail})
    return WebhookResult(200, outcome)


async def _apply(s: AsyncSession, settings: Settings, event_type: str, payload: Any,
                 changes: list[tuple[UUID, dict[str, Any]]]) -> str:
    data = payload.data
    event_time = _when(payload.timestamp) or datetime.now(UTC)
    if event_type in SUBSCRIPTION_EVENTS:
        business_id = await _business_for_customer(s, data.customer.external_id)
        if business_id is None:
            return "no business for this customer"
        return await _keep_subscription(s, settings, business_id, data, changes, customer_id=data.customer_id,
                                        modified=_when(data.modified_at) or _when(data.created_at) or event_time)
    if event_type == "customer.state_changed":
        business_id = await _business_for_customer(s, data.external_id)
        if business_id is None:
            return "no business for this customer"
        outcomes = [
            await _keep_subscription(s, settings, business_id, sub, changes, customer_id=data.id,
                                     modified=_when(sub.modified_at) or _when(sub.created_at) or event_time)
            for sub in data.active_subscriptions
        ]
        return "; ".join(outcomes) or "no active subscription in the customer state"
    if event_type == "order.paid":
        business_id = await _business_for_customer(s, data.customer.external_id)
        if business_id is None:
            return "no business for this customer"
        return await _keep_order(s, business_id, data)
    return "not used"


async def _keep_subscription(s: AsyncSession, settings: Settings, business_id: UUID, sub: Any,
                             changes: list[tuple[UUID, dict[str, Any]]], *,
                             customer_id: str | None, modified: datetime) -> str:
    plan = plan_for_product(settings.polar_plans, sub.product_id)
    values: dict[str, Any] = {
        "polar_subscription_id": sub.id,
        "polar_customer_id": customer_id,
        "product_id": sub.product_id,
        "plan": plan.key if plan is not None else "unknown",
        "status": str(sub.status),
        "current_period_start": _when(sub.current_period_start),
        "current_period_end": _when(sub.current_period_end),
        "cancel_at_period_end": bool(sub.cancel_at_period_end),
        "ends_at": _when(sub.ends_at),
        "polar_modified_at": modified,
    }
    kept = await s.scalar(select(BillingSubscription).where(BillingSubscription.business_id == business_id))
    shown = ("plan", "status", "cancel_at_period_end")
    if kept is None:
        s.add(BillingSubscription(business_id=business_id, **values))
        changes.append((business_id, {k: values[k] for k in shown}))
        return f"subscription {sub.id} {values['status']} on plan {values['plan']}"
    if modified < (_aware(kept.polar_modified_at) or modified):
        return f"older than the state kept ({kept.status}): ignored"
    if any(getattr(kept, k) != values[k] for k in shown):
        changes.append((business_id, {k: values[k] for k in shown}))
    for name, value in values.items():
        setattr(kept, name, value)
    suffix = ", cancels at period end" if values["cancel_at_period_end"] else ""
    return f"subscription {sub.id} {values['status']} on plan {values['plan']}{suffix}"


async def _keep_order(s: AsyncSession, business_id: UUID, order: Any) -> str:
    created = _when(order.created_at) or datetime.now(UTC)
    existing = await s.scalar(select(Billing).where(Billing.provider_reference == order.id))
    row = existing or Billing(business_id=business_id, provider_reference=order.id)
    row.period = f"{created:%Y-%m}"
    row.amount_cents = int(order.total_amount)
    row.currency = str(order.currency).upper()[:3]
    row.status = BillingStatus.PAID.value
    if existing is None:
        s.add(row)
    return f"order {order.id} paid ({order.total_amount} {row.currency})"
