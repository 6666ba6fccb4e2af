"""Billing test helpers: the Polar double started for a test, and the environment that points the app at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from tests.doubles.polar_double import PolarDouble

STARTER = "prod_starter_5f1c"  # stop at the limit
PRO = "prod_pro_7a2d"  # overage billed, per second
PLANS = [
    {"key": "starter", "name": "Starter", "product_id": STARTER, "included_minutes": 3, "over_limit": "stop",
     "price_label": "$29/month"},
    {"key": "pro", "name": "Pro", "product_id": PRO, "included_minutes": 1000, "over_limit": "overage",
     "rounding": "second"},
]


@contextmanager
def polar_double() -> Iterator[PolarDouble]:
    double = PolarDouble(products={STARTER: "Starter", PRO: "Pro"}).start()
    try:
        yield double
    finally:
        double.stop()


def polar_env(double: PolarDouble, **extra: str) -> dict[str, str]:
    return {
        "POLAR_ACCESS_TOKEN": double.token,
        "POLAR_WEBHOOK_SECRET": double.webhook_secret,
        "POLAR_API_BASE_URL": double.api_base_url,
        "POLAR_PLANS": json.dumps(PLANS),
        **extra,
    }
