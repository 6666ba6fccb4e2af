"""A Polar double that behaves like Polar's public API (version 2026-04) towards the app, for tests.

What the service calls, on a local HTTP server (`api_base_url`, set as POLAR_API_BASE_URL):
- `POST /v1/checkouts/` {products (required, known product ids), external_customer_id, success_url, metadata}
  → a full `Checkout` (status `open`, `url` to Polar's checkout page); the customer with that external id is
  found or created, as Polar does. `complete_checkout()` then plays the customer paying: a subscription
  (`active`, a month-long period) and its first order (`paid`, billing_reason `subscription_create`).
- `POST /v1/customer-sessions/` {external_customer_id, return_url} → a full `CustomerSession` with
  `customer_portal_url`; an unknown customer is 422, as on Polar.
- `POST /v1/events/ingest` {events: [{name, external_customer_id, external_id, metadata, timestamp}]} →
  `{inserted, duplicates}`: an event whose `external_id` was already ingested is a duplicate and counts once.
  `drop_next_ingest_answers(n)` stores the events and then drops the connection without an answer (the
  client sees a failed request although the events landed: a timeout after commit); `fail_next_ingests(n)`
  answers 503 without storing.
- `GET /v1/orders/` (external_customer_id, page, limit, sorting) → `ListResourceOrder` of full `Order`s.
- `GET /v1/subscriptions/` (external_customer_id) → `ListResourceSubscription`.
Every request needs `Authorization: Bearer <token>` (401 otherwise).

Objects are complete: every field of the API's schema is present (the SDK refuses anything less), built by
`full_object` from the schema types polar-sdk was generated from, with the fields that matter set explicitly.

Webhooks are sent with the real Standard Webhooks algorithm (the `standardwebhooks` package signs
"id.timestamp.body" with HMAC-SHA256 keyed by the secret's UTF-8 bytes, Polar's convention): `deliver()`
posts one event, and can backdate the timestamp or sign with the wrong secret to test refusals.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web
from polar.v2026_04 import outputs
from standardwebhooks import Webhook

from tests.support.threaded_site import OnThreadedSite, ThreadedSite

ORGANIZATION_ID = "5f0c1b2e-7c1a-4a5e-9a57-7b0f2d6f6a01"


# -- complete objects from the schema ---------------------------------------------------------------------
def _timestamp(name: str) -> bool:
    return name.endswith(("_at", "_start", "_end")) or name in {"timestamp", "expires_at"}


def _value(tp: Any, name: str, depth: int) -> Any:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args:
            return None
        return _value(args[0], name, depth)
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    if origin is typing.Annotated:
        return _value(typing.get_args(tp)[0], name, depth)
    if origin in (list, tuple, set, frozenset) or tp in (list,):
        return []
    if origin in (dict, Mapping) or tp is dict:
        return {}
    if dataclasses.is_dataclass(tp):
        return full_object(tp, _depth=depth + 1)
    if tp is str:
        if name == "id" or name.endswith("_id"):
            return str(uuid.uuid4())
        if _timestamp(name):
            return _iso(datetime.now(UTC))
        if name == "currency":
            return "usd"
        return name
    if tp is bool:
        return False
    if tp is int:
        return 0
    if tp is float:
        return 0.0
    if tp is typing.Any:
        return None
    raise TypeError(f"no value for {name}: {tp!r}")


def full_object(cls: Any, _depth: int = 0, **overrides: Any) -> dict[str, Any]:
    """Every field of the schema type `cls`, as JSON; `overrides` set the ones a test cares about."""
    if _depth > 8:
        raise RecursionError(f"{cls} nests too deep")
    hints = typing.get_type_hints(cls, include_extras=True)
    result: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in overrides:
            result[f.name] = overrides[f.name]
        else:
            result[f.name] = _value(hints[f.name], f.name, _depth)
    unknown = set(overrides) - set(result)
    if unknown:
        raise KeyError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return result


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- state ------------------------------------------------------------------------------------------------
@dataclass
class Customer:
    id: str
    external_id: str
    email: str


@dataclass
class SubscriptionState:
    id: str
    customer: Customer
    product_id: str
    status: str = "active"
    current_period_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    current_period_end: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=30))
    cancel_at_period_end: bool = False
    ends_at: datetime | None = None
    canceled_at: datetime | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    amount: int = 2900


@dataclass
class OrderState:
    id: str
    customer: Customer
    product_id: str
    subscription_id: str | None
    total_amount: int
    billing_reason: str = "subscription_create"
    status: str = "paid"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class PolarDouble(OnThreadedSite):
    def __init__(self, *, token: str = "polar_oat_test", webhook_secret: str = "polar_whs_test_secret",
                 products: Mapping[str, str] | None = None) -> None:
        self.token = token
        self.webhook_secret = webhook_secret
        # product id → name
        self.products: dict[str, str] = dict(products or {})
        self.customers: dict[str, Customer] = {}  # by external id
        self.checkouts: list[dict[str, Any]] = []
        self.customer_sessions: list[dict[str, Any]] = []
        self.subscriptions: dict[str, SubscriptionState] = {}
        self.orders: list[OrderState] = []
        self.events: dict[str, dict[str, Any]] = {}  # by external_id (or a generated id)
        self.ingest_requests: list[dict[str, Any]] = []
        self.deliveries: list[tuple[str, int, str]] = []  # (type, status, body)
        self._drop_answers = 0
        self._fail_ingests = 0
        self._lock = threading.Lock()
        self._site = ThreadedSite("polar-double", self._app)

    # -- lifecycle ----------------------------------------------------------------------------------------
    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.add_routes([
            web.post("/v1/checkouts/", self._checkout),
            web.post("/v1/customer-sessions/", self._customer_session),
            web.post("/v1/events/ingest", self._ingest),
            web.get("/v1/orders/", self._list_orders),
            web.get("/v1/subscriptions/", self._list_subscriptions),
        ])
        return app

    def drop_next_ingest_answers(self, count: int = 1) -> None:
        self._drop_answers = count

    def fail_next_ingests(self, count: int = 1) -> None:
        self._fail_ingests = count

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    @staticmethod
    def _unauthorised() -> web.Response:
        return web.json_response({"error": "invalid_token", "error_description": "The access token is invalid."},
                                 status=401)

    @staticmethod
    def _invalid(loc: list[Any], msg: str) -> web.Response:
        return web.json_response({"error": "RequestValidationError",
                                  "detail": [{"loc": loc, "msg": msg, "type": "value_error", "input": None}]},
                                 status=422)

    def _customer(self, external_id: str) -> Customer:
        customer = self.customers.get(external_id)
        if customer is None:
            customer = Customer(id=str(uuid.uuid4()), external_id=external_id, email=f"{external_id[:8]}@example.com")
            self.customers[external_id] = customer
        return customer

    def _product(self, product_id: str) -> dict[str, Any]:
        return full_object(outputs.CheckoutProduct, id=product_id, name=self.products.get(product_id, "Plan"),
                           organization_id=ORGANIZATION_ID, is_recurring=True, recurring_interval="month",
                           recurring_interval_count=1, is_archived=False, prices=[], benefits=[], medias=[])

    async def _checkout(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        body = await request.json()
        products = body.get("products")
        if not isinstance(products, list) or not products:
            return self._invalid(["body", "products"], "Field required")
        for index, product_id in enumerate(products):
            if product_id not in self.products:
                return self._invalid(["body", "products", index], "Product does not exist.")
        external_id = body.get("external_customer_id")
        with self._lock:
            customer = self._customer(external_id) if external_id else None
            checkout_id = str(uuid.uuid4())
            secret = f"polar_c_{uuid.uuid4().hex}"
            now = datetime.now(UTC)
            checkout = full_object(
                outputs.Checkout,
                id=checkout_id, created_at=_iso(now), modified_at=None, payment_processor="stripe", status="open",
                client_secret=secret, url=f"{self.api_base_url}/checkout/{secret}",
                expires_at=_iso(now + timedelta(hours=1)),
                success_url=str(body.get("success_url") or ""),
                return_url=body.get("return_url"), amount=2900, discount_amount=0, net_amount=2900,
                tax_amount=None, total_amount=2900, currency="usd", organization_id=ORGANIZATION_ID,
                product_id=products[0], external_customer_id=external_id,
                customer_id=customer.id if customer else None, metadata=body.get("metadata") or {},
                products=[self._product(p) for p in products], product=self._product(products[0]),
                payment_processor_metadata={}, is_payment_required=True, is_payment_form_required=True,
            )
            self.checkouts.append({"request": body, "response": checkout})
        return web.json_response(checkout, status=201)

    async def _customer_session(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        body = await request.json()
        customer = self.customers.get(str(body.get("external_customer_id")))
        if customer is None:
            return self._invalid(["body", "external_customer_id"], "Customer does not exist.")
        token = f"polar_cst_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        session = full_object(
            outputs.CustomerSession,
            created_at=_iso(now), modified_at=None, token=token, expires_at=_iso(now + timedelta(hours=1)),
            return_url=body.get("return_url"),
            customer_portal_url=f"{self.api_base_url}/portal?customer_session_token={token}",
            customer_id=customer.id, customer=self._customer_object(outputs.CustomerIndividual, customer),
        )
        self.customer_sessions.append({"request": body, "response": session})
        return web.json_response(session, status=201)

    async def _ingest(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return self._unauthorised()
        body = await request.json()
        events = body.get("events")
        if not isinstance(events, list):
            return self._invalid(["body", "events"], "Field required")
        for index, event in enumerate(events):
            if not isinstance(event, dict) or not event.get("name"):
                return self._invalid(["body", "events", index, "name"], "Field required")
            if not event.get("external_customer_id") and not event.get("customer_id"):
                return self._invalid(["body", "events", index], "customer_id or external_customer_id required")
        with self._lock:
            self.ingest_requests.append(body)
            if self._fail_ingests:
                self._fail_ingests -= 1
                return web.json_response({"error": "ServiceUnavailable"}, status=503)
            inserted = duplicates = 0
            for event in events:
                key = event.get("external_id") or str(uuid.uuid4())
                if key in self.events:
                    duplicates += 1
                else:
                    self.events[key] = event
                    inserted += 1
            drop = self._drop_answers > 0
            if drop:
                self._drop_answers -= 1
        if drop:
            # The events are stored; the answer never arrives (the client's request fails).
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("answer dropped by the double")
        return web.json_response({"inserted": inserted, "duplicates": duplicates})

    def _page(self, request: web.Request) -> tuple[int, int]:
        try:
            return max(1, int(request.query.get("page", "1"))), max(1, min(100, int(request.query.get("limit", "10"))))
        except ValueError:
            return 1, 10

    async def _list_orders(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        external_ids = request.query.getall("external_customer_id", [])
        page, limit = self._page(request)
        with self._lock:
            orders = [o for o in self.orders if not external_ids or o.customer.external_id in external_ids]
        orders.sort(key=lambda o: o.created_at, reverse=True)
        items = [self.order_object(o) for o in orders[(page - 1) * limit: page * limit]]
        return web.json_response({"items": items, "pagination": {"total_count": len(orders),
                                                                 "max_page": max(1, -(-len(orders) // limit))}})

    async def _list_subscriptions(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._unauthorised()
        external_ids = request.query.getall("external_customer_id", [])
        with self._lock:
            subs = [s for s in self.subscriptions.values()
                    if not external_ids or s.customer.external_id in external_ids]
        items = [self.subscription_object(s) for s in subs]
        return web.json_response({"items": items, "pagination": {"total_count": len(items), "max_page": 1}})

    # -- objects ------------------------------------------------------------------------------------------
    def _customer_object(self, cls: Any, customer: Customer) -> dict[str, Any]:
        return full_object(cls, id=customer.id, external_id=customer.external_id, email=customer.email,
                           email_verified=True, type="individual", name="Owner", organization_id=ORGANIZATION_ID,
                           metadata={}, created_at=_iso(datetime.now(UTC)), modified_at=None, deleted_at=None)

    def subscription_object(self, sub: SubscriptionState) -> dict[str, Any]:
        product = full_object(outputs.Product, id=sub.product_id, name=self.products.get(sub.product_id, "Plan"),
                              organization_id=ORGANIZATION_ID, is_recurring=True, recurring_interval="month",
                              recurring_interval_count=1, is_archived=False, prices=[], benefits=[], medias=[],
                              metadata={}, attached_custom_fields=[])
        return full_object(
            outputs.Subscription,
            id=sub.id, created_at=_iso(sub.created_at), modified_at=_iso(sub.modified_at), amount=sub.amount,
            currency="usd", recurring_interval="month", recurring_interval_count=1, status=sub.status,
            current_period_start=_iso(sub.current_period_start), current_period_end=_iso(sub.current_period_end),
            current_meter_period_start=_iso(sub.current_period_start),
            current_meter_period_end=_iso(sub.current_period_end), trial_start=None, trial_end=None,
            cancel_at_period_end=sub.cancel_at_period_end,
            canceled_at=_iso(sub.canceled_at) if sub.canceled_at else None, started_at=_iso(sub.created_at),
            ends_at=_iso(sub.ends_at) if sub.ends_at else None, ended_at=None, paused_at=None, resumes_at=None,
            customer_id=sub.customer.id, product_id=sub.product_id, discount_id=None, checkout_id=None,
            metadata={}, customer=self._customer_object(outputs.SubscriptionCustomer, sub.customer),
            product=product, prices=[], meters=[], pending_update=None,
        )

    def order_object(self, order: OrderState) -> dict[str, Any]:
        return full_object(
            outputs.Order,
            id=order.id, created_at=_iso(order.created_at), modified_at=_iso(order.created_at), status=order.status,
            paid=order.status == "paid", subtotal_amount=order.total_amount, discount_amount=0,
            net_amount=order.total_amount, tax_amount=0, total_amount=order.total_amount, applied_balance_amount=0,
            due_amount=0, refunded_amount=0, refunded_tax_amount=0, currency="usd",
            billing_reason=order.billing_reason, invoice_number=f"INV-{order.id[:6].upper()}",
            is_invoice_generated=True, customer_id=order.customer.id, product_id=order.product_id,
            subscription_id=order.subscription_id, metadata={}, platform_fee_amount=0,
            customer=self._customer_object(outputs.OrderCustomer, order.customer), items=[],
            description=self.products.get(order.product_id, "Plan"), refundable_amount=order.total_amount,
            refundable_tax_amount=0,
        )

    def customer_state_object(self, customer: Customer) -> dict[str, Any]:
        active = [s for s in self.subscriptions.values()
                  if s.customer is customer and s.status in {"active", "trialing", "past_due"}]
        return full_object(
            outputs.CustomerStateIndividual,
            id=customer.id, created_at=_iso(datetime.now(UTC)), modified_at=None, metadata={},
            external_id=customer.external_id, email=customer.email, email_verified=True, type="individual",
            name="Owner", organization_id=ORGANIZATION_ID, deleted_at=None,
            active_subscriptions=[full_object(
                outputs.CustomerStateSubscription, id=s.id, created_at=_iso(s.created_at),
                modified_at=_iso(s.modified_at), metadata={}, status=s.status, amount=s.amount, currency="usd",
                recurring_interval="month", current_period_start=_iso(s.current_period_start),
                current_period_end=_iso(s.current_period_end), trial_start=None, trial_end=None,
                cancel_at_period_end=s.cancel_at_period_end, canceled_at=None, started_at=_iso(s.created_at),
                ends_at=_iso(s.ends_at) if s.ends_at else None, product_id=s.product_id, discount_id=None,
                seats=None, units=None, meters=[]) for s in active],
            granted_benefits=[], active_meters=[],
        )

    # -- what a customer does on Polar's pages ------------------------------------------------------------
    def complete_checkout(self, checkout_index: int = -1) -> SubscriptionState:
        """The customer pays for a checkout: a subscription and its first paid order."""
        checkout = self.checkouts[checkout_index]["response"]
        customer = self._customer(checkout["external_customer_id"])
        with self._lock:
            sub = SubscriptionState(id=str(uuid.uuid4()), customer=customer, product_id=checkout["product_id"])
            self.subscriptions[sub.id] = sub
            self.orders.append(OrderState(id=str(uuid.uuid4()), customer=customer, product_id=sub.product_id,
                                          subscription_id=sub.id, total_amount=sub.amount))
        return sub

    def cancel(self, sub: SubscriptionState) -> None:
        """The customer cancels in the portal: still active until the period ends."""
        now = datetime.now(UTC)
        sub.cancel_at_period_end, sub.canceled_at, sub.ends_at = True, now, sub.current_period_end
        sub.modified_at = now

    # -- webhooks -----------------------------------------------------------------------------------------
    def payload(self, event_type: str, data: dict[str, Any], *, timestamp: datetime | None = None) -> str:
        return json.dumps({"type": event_type, "timestamp": _iso(timestamp or datetime.now(UTC)),
                           "api_version": "2026-04", "data": data})

    def signed_headers(self, body: str, *, webhook_id: str | None = None, timestamp: datetime | None = None,
                       secret: str | None = None) -> dict[str, str]:
        """Standard Webhooks headers; the key is the secret's UTF-8 bytes (base64-encoded for the library)."""
        key = base64.b64encode((secret or self.webhook_secret).encode()).decode()
        when = timestamp or datetime.now(UTC)
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(key).sign(msg_id, when, body),
            "content-type": "application/json",
        }

    def deliver(self, url: str, event_type: str, data: dict[str, Any], *, webhook_id: str | None = None,
                timestamp: datetime | None = None, secret: str | None = None) -> httpx.Response:
        """POST one webhook as Polar does (no redirects followed: Polar counts a redirect as a failure)."""
        body = self.payload(event_type, data, timestamp=timestamp)
        headers = self.signed_headers(body, webhook_id=webhook_id, timestamp=timestamp, secret=secret)
        response = httpx.post(url, content=body.encode(), headers=headers, timeout=10, follow_redirects=False)
        self.deliveries.append((event_type, response.status_code, response.text))
        return response
