"""The one Polar client of the process (polar-sdk 1.0, API version 2026-04), and what the service asks of it.

- Reached only through `POLAR_API_BASE_URL` (Polar, its sandbox, or a local double in tests). One long-lived
  `PolarAsync` per process: an httpx client per request would build a TLS context on the event loop each time.
- Our user id is Polar's `external_customer_id`: a checkout with it finds or creates the customer, so the
  service stores no Polar customer id before the first webhook, and never sees card data (checkout and the
  customer portal are Polar's pages).
- Errors Polar can recover from (network, 5xx, 429) are `PolarUnavailable`; a refusal (4xx) is `PolarRefused`.
- polar-sdk (with adaptix) takes seconds to import on a busy machine: it is imported only where Polar is
  configured, off the event loop at start-up (`load_sdk`), so other deployments and tests don't pay for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Litestar

from app.settings import Settings

if TYPE_CHECKING:
    from polar.v2026_04 import PolarAsync

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0


class PolarUnavailable(Exception):
    """Polar could not be reached or answered 5xx/429: try again later."""


class PolarRefused(Exception):
    """Polar refused the request (4xx other than 429): retrying the same request won't help."""


@dataclass(frozen=True, slots=True)
class OrderLine:
    id: str
    created_at: str
    status: str
    billing_reason: str
    total_amount: int
    currency: str
    description: str
    invoice_number: str | None


def load_sdk() -> None:
    """Import polar-sdk and build its webhook loaders (call it in a thread): seconds of CPU the first time."""
    import polar.v2026_04  # noqa: F401

    from app.billing.webhooks import warm_loaders

    warm_loaders()


def _translate(exc: Exception) -> Exception:
    from polar.base import PolarClientError, PolarDeserializationError, PolarError, PolarRateLimitError

    if not isinstance(exc, PolarError):
        return exc
    if isinstance(exc, PolarRateLimitError):
        return PolarUnavailable("Polar rate limit")
    if isinstance(exc, PolarClientError):
        return PolarRefused(f"Polar refused the request ({exc.status_code})")
    if isinstance(exc, PolarDeserializationError):
        return PolarRefused("Polar's answer did not match the API version this service speaks")
    return PolarUnavailable(type(exc).__name__)


class PolarGateway:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: PolarAsync | None = None

    @property
    def configured(self) -> bool:
        return bool(self._settings.polar_access_token)

    def client(self) -> PolarAsync:
        if self._client is None:
            if not self._settings.polar_access_token:
                raise PolarRefused("POLAR_ACCESS_TOKEN is not set")
            from polar.v2026_04 import PolarAsync

            self._client = PolarAsync(self._settings.polar_access_token, base_url=self._settings.polar_api_base_url,
                                      timeout=TIMEOUT_SECONDS)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__()
            self._client = None

    async def create_checkout(self, *, product_id: str, external_customer_id: str, success_url: str,
                              metadata: Mapping[str, str]) -> str:
        """A checkout session for one product; returns the URL to send the owner to."""
        try:
            checkout = await self.client().checkouts.create(
                products=[product_id], external_customer_id=external_customer_id, success_url=success_url,
                metadata=dict(metadata),
            )
        except Exception as exc:
            raise _translate(exc) from exc
        return checkout.url

    async def portal_url(self, *, external_customer_id: str, return_url: str) -> str:
        try:
            session = await self.client().customer_sessions.create(
                external_customer_id=external_customer_id, return_url=return_url
            )
        except Exception as exc:
            raise _translate(exc) from exc
        return session.customer_portal_url

    async def ingest(self, events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """Send usage events; (inserted, duplicates). An event already ingested (same external_id) is a
        duplicate, so resending after a timeout never counts twice."""
        try:
            result = await self.client().events.ingest(events=[dict(e) for e in events])  # type: ignore[misc]
        except Exception as exc:
            raise _translate(exc) from exc
        return result.inserted, result.duplicates

    async def recent_orders(self, external_customer_id: str, limit: int = 10) -> list[OrderLine]:
        try:
            page = await self.client().orders.list(external_customer_id=external_customer_id, limit=limit)
        except Exception as exc:
            raise _translate(exc) from exc
        return [
            OrderLine(id=o.id, created_at=o.created_at, status=str(o.status), billing_reason=str(o.billing_reason),
                      total_amount=o.total_amount, currency=o.currency.upper(), description=o.description,
                      invoice_number=o.invoice_number)
            for o in page.items
        ]


def get_polar(app: Litestar) -> PolarGateway:
    """The process's gateway, on `app.state.polar` (built on first use, closed at shutdown)."""
    gateway: PolarGateway | None = app.state.get("polar")
    if gateway is None:
        gateway = app.state.polar = PolarGateway(app.state.settings)
    return gateway
