"""Billing with Polar, in-process against the Polar double: checkout and portal through polar-sdk, and the
signed webhook that keeps the subscription state (signatures, timestamps, redelivery, out-of-order events)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from app.db.models import AuditEntry, Billing, BillingSubscription, Business, PolarWebhookDelivery, User
from app.main import create_app
from app.settings import Settings
from tests.conftest import make_settings, migrated_database
from tests.doubles.polar_double import PolarDouble, SubscriptionState
from tests.support.billing import STARTER, polar_double, polar_env
from tests.support.dashboard import csrf_token, sign_in
from tests.support.data import create_owner

WEBHOOK = "/billing/polar/webhook"


@dataclass
class Ctx:
    client: AsyncTestClient[Litestar]
    polar: PolarDouble
    settings: Settings
    db: Any
    user: User
    business: Business

    async def deliver(self, event_type: str, data: dict[str, Any], **kw: Any) -> Any:
        body = self.polar.payload(event_type, data, timestamp=kw.get("timestamp"))
        headers = self.polar.signed_headers(body, **kw)
        return await self.client.post(WEBHOOK, content=body.encode(), headers=headers)

    async def subscription(self) -> BillingSubscription | None:
        async with self.db.session() as s:
            return await s.scalar(
                select(BillingSubscription).where(BillingSubscription.business_id == self.business.id))


@pytest.fixture
def polar() -> Iterator[PolarDouble]:
    with polar_double() as double:
        yield double


@pytest.fixture
async def ctx(data_dir: Path, polar: PolarDouble) -> AsyncIterator[Ctx]:
    settings = make_settings(data_dir, **polar_env(polar))
    async with migrated_database(settings) as db:
        user, business = await create_owner(db, transfer_number="+15557654321")
        async with AsyncTestClient(create_app(settings)) as client:
            client.follow_redirects = False
            sign_in(client, settings, user.id)
            yield Ctx(client, polar, settings, db, user, business)


async def _upgrade(ctx: Ctx, plan: str = "starter") -> SubscriptionState:
    token = await csrf_token(ctx.client, "/billing")
    response = await ctx.client.post("/billing/checkout", data={"plan": plan}, headers={"x-csrftoken": token})
    assert response.status_code == 303
    assert response.headers["location"] == ctx.polar.checkouts[-1]["response"]["url"]
    return ctx.polar.complete_checkout()


async def test_upgrade_creates_a_checkout_for_the_plan_and_the_owner(ctx: Ctx) -> None:
    page = (await ctx.client.get("/billing")).text
    assert "Free trial" in page and 'id="upgrade-starter"' in page and 'id="upgrade-pro"' in page
    await _upgrade(ctx)
    sent = ctx.polar.checkouts[-1]["request"]
    assert sent["products"] == [STARTER]
    assert sent["external_customer_id"] == str(ctx.user.id)  # our user id is Polar's external customer id
    assert sent["success_url"] == f"{ctx.settings.public_base_url}/billing?checkout_id={{CHECKOUT_ID}}"
    assert sent["metadata"] == {"business_id": str(ctx.business.id), "plan": "starter"}


async def test_an_unknown_plan_or_polar_refusing_sends_the_owner_back_with_a_message(ctx: Ctx) -> None:
    token = await csrf_token(ctx.client, "/billing")
    response = await ctx.client.post("/billing/checkout", data={"plan": "gold"}, headers={"x-csrftoken": token})
    assert response.headers["location"] == "/billing?error=unknown-plan" and not ctx.polar.checkouts
    ctx.polar.products.pop(STARTER)  # Polar answers 422: the product no longer exists
    response = await ctx.client.post("/billing/checkout", data={"plan": "starter"}, headers={"x-csrftoken": token})
    assert response.headers["location"] == "/billing?error=checkout"
    page = (await ctx.client.get("/billing?error=checkout")).text
    assert "start the checkout just now" in page and "Nothing was charged" in page


async def test_subscription_active_shows_the_plan_and_polar_orders(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    response = await ctx.deliver("subscription.active", ctx.polar.subscription_object(sub))
    assert response.status_code == 200, response.text
    kept = await ctx.subscription()
    assert kept is not None and (kept.plan, kept.status, kept.product_id) == ("starter", "active", STARTER)
    assert kept.current_period_end is not None and not kept.cancel_at_period_end
    order = ctx.polar.orders[-1]
    assert (await ctx.deliver("order.paid", ctx.polar.order_object(order))).status_code == 200
    async with ctx.db.session() as s:
        paid = await s.scalar(select(Billing).where(Billing.provider_reference == order.id))
    assert paid is not None and (paid.amount_cents, paid.currency, paid.status) == (2900, "USD", "paid")
    page = (await ctx.client.get("/billing")).text
    assert '<span class="plan" id="plan-name">Starter</span>' in page
    assert 'id="manage-billing"' in page and 'id="upgrade-starter"' not in page and 'id="upgrade-pro"' in page
    assert "29.00 USD" in page and f"INV-{order.id[:6].upper()}" in page  # read from Polar's orders API


async def test_manage_billing_opens_a_customer_portal_session(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    await ctx.deliver("subscription.active", ctx.polar.subscription_object(sub))
    token = await csrf_token(ctx.client, "/billing")
    response = await ctx.client.post("/billing/portal", headers={"x-csrftoken": token})
    assert response.status_code == 303
    session = ctx.polar.customer_sessions[-1]
    assert response.headers["location"] == session["response"]["customer_portal_url"]
    assert session["request"] == {"external_customer_id": str(ctx.user.id),
                                  "return_url": f"{ctx.settings.public_base_url}/billing"}


async def test_bad_signature_and_old_timestamp_are_refused_with_403_and_change_nothing(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    data = ctx.polar.subscription_object(sub)
    assert (await ctx.deliver("subscription.active", data, secret="someone-elses-secret")).status_code == 403
    old = datetime.now(UTC) - timedelta(minutes=6)
    assert (await ctx.deliver("subscription.active", data, timestamp=old)).status_code == 403
    future = datetime.now(UTC) + timedelta(minutes=6)
    assert (await ctx.deliver("subscription.active", data, timestamp=future)).status_code == 403
    body = ctx.polar.payload("subscription.active", data)
    tampered = ctx.polar.signed_headers(body)
    response = await ctx.client.post(WEBHOOK, content=body.replace("active", "revoked").encode(), headers=tampered)
    assert response.status_code == 403
    unsigned = {k: v for k, v in tampered.items() if k != "webhook-signature"}
    assert (await ctx.client.post(WEBHOOK, content=body.encode(), headers=unsigned)).status_code == 403
    assert await ctx.subscription() is None
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count(PolarWebhookDelivery.id))) == 0
    # Inside the window it is accepted.
    recent = datetime.now(UTC) - timedelta(minutes=4)
    assert (await ctx.deliver("subscription.active", data, timestamp=recent)).status_code == 200


async def test_a_redelivery_changes_nothing(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    active = ctx.polar.subscription_object(sub)
    first = await ctx.deliver("subscription.active", active, webhook_id="msg_fixed_1")
    assert first.status_code == 200 and "active" in first.json()["outcome"]
    ctx.polar.cancel(sub)
    await ctx.deliver("subscription.canceled", ctx.polar.subscription_object(sub), webhook_id="msg_fixed_2")
    kept = await ctx.subscription()
    assert kept is not None and kept.cancel_at_period_end
    again = await ctx.deliver("subscription.active", active, webhook_id="msg_fixed_1")  # Polar retries
    assert again.status_code == 200 and again.json()["outcome"] == "already handled"
    kept = await ctx.subscription()
    assert kept is not None and kept.cancel_at_period_end and kept.status == "active"
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count(PolarWebhookDelivery.id))) == 2


async def test_canceled_arriving_before_the_earlier_updated_ends_in_the_right_state(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    sub.modified_at = datetime.now(UTC) - timedelta(seconds=30)
    earlier_update = ctx.polar.subscription_object(sub)  # e.g. a plan detail changed, not yet canceled
    ctx.polar.cancel(sub)
    canceled = ctx.polar.subscription_object(sub)
    assert (await ctx.deliver("subscription.canceled", canceled)).status_code == 200
    late = await ctx.deliver("subscription.updated", earlier_update)
    assert late.status_code == 200 and "ignored" in late.json()["outcome"]
    kept = await ctx.subscription()
    assert kept is not None and kept.status == "active" and kept.cancel_at_period_end
    assert kept.ends_at is not None
    page = (await ctx.client.get("/billing")).text
    assert 'id="cancels"' in page and "Starter" in page
    # At the period's end Polar revokes it: the business is back on the free trial.
    sub.status, sub.modified_at = "canceled", datetime.now(UTC)
    sub.current_period_end = sub.ends_at = datetime.now(UTC) - timedelta(seconds=1)
    assert (await ctx.deliver("subscription.revoked", ctx.polar.subscription_object(sub))).status_code == 200
    page = (await ctx.client.get("/billing")).text
    assert '<span class="plan" id="plan-name">Free trial</span>' in page


async def test_customer_state_changed_keeps_the_active_subscription(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    response = await ctx.deliver("customer.state_changed", ctx.polar.customer_state_object(sub.customer))
    assert response.status_code == 200, response.text
    kept = await ctx.subscription()
    assert kept is not None and (kept.polar_subscription_id, kept.status, kept.plan) == (sub.id, "active", "starter")


async def test_unknown_events_are_acknowledged_and_incomplete_ones_refused(ctx: Ctx) -> None:
    assert (await ctx.deliver("something.new", {"id": "x"})).status_code == 202
    response = await ctx.deliver("subscription.active", {"id": "only-an-id"})
    assert response.status_code == 400
    assert await ctx.subscription() is None


async def test_the_webhook_needs_its_secret(data_dir: Path, polar: PolarDouble) -> None:
    env = polar_env(polar)
    env.pop("POLAR_WEBHOOK_SECRET")
    settings = make_settings(data_dir, **env)
    async with migrated_database(settings), AsyncTestClient(create_app(settings)) as client:
        body = polar.payload("subscription.active", {})
        response = await client.post(WEBHOOK, content=body.encode(), headers=polar.signed_headers(body))
    assert response.status_code == 503


async def test_the_owner_marks_a_call_as_spam_and_only_their_own(ctx: Ctx) -> None:
    from app.db.models import Call
    from tests.support.dashboard import seed_call

    _session, call = await seed_call(ctx.db, ctx.business.id, billable_seconds=95.0)
    _other_user, other = await create_owner(ctx.db)
    _session, theirs = await seed_call(ctx.db, other.id, billable_seconds=95.0)
    page = (await ctx.client.get(f"/calls/{call.id}")).text
    assert 'id="mark-spam"' in page and "1:35 of your plan" in page
    token = await csrf_token(ctx.client, f"/calls/{call.id}")
    response = await ctx.client.post(f"/calls/{theirs.id}/spam", headers={"x-csrftoken": token})
    assert response.status_code == 404
    response = await ctx.client.post(f"/calls/{call.id}/spam", headers={"x-csrftoken": token})
    assert response.status_code == 303 and response.headers["location"] == f"/calls/{call.id}"
    async with ctx.db.session() as s:
        assert (await s.get(Call, call.id)).is_spam  # type: ignore[union-attr]
        assert not (await s.get(Call, theirs.id)).is_spam  # type: ignore[union-attr]
    page = (await ctx.client.get(f"/calls/{call.id}")).text
    assert "marked as spam" in page and 'id="mark-spam"' not in page


async def test_checkout_portal_and_polar_plan_changes_are_in_the_activity_log(ctx: Ctx) -> None:
    sub = await _upgrade(ctx)
    await ctx.deliver("subscription.active", ctx.polar.subscription_object(sub))
    await ctx.deliver("subscription.active", ctx.polar.subscription_object(sub))  # a redelivery: no new entry
    token = await csrf_token(ctx.client, "/billing")
    await ctx.client.post("/billing/portal", headers={"x-csrftoken": token})
    async with ctx.db.session() as s:
        entries = list(await s.scalars(select(AuditEntry).where(AuditEntry.action == "billing.changed")
                                       .order_by(AuditEntry.created_at)))
    assert [(e.business_id, e.actor_kind) for e in entries] == [(ctx.business.id, "owner"), (ctx.business.id, "polar"),
                                                                (ctx.business.id, "owner")]
    assert entries[0].detail == {"checkout": "starter"} and entries[1].detail["status"] == "active"
    assert entries[2].detail == {"portal": "opened"}
    page = (await ctx.client.get("/audit")).text
    assert page.count("Changed the plan or billing") == 3
