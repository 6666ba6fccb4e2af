"""Plans: what a business may use per billing period and what happens past it (issue 13).

The operator defines the paid plans as Polar products (POLAR_PLANS names each product id with its included
minutes, over-limit behaviour and rounding); the free trial needs no Polar at all. A plan is pure
configuration: it never changes while the process runs, so it is parsed once at start-up, and a wrong value
stops the server with a `SettingsError`-style message naming the variable.

- `over_limit="overage"`: keep answering with the AI; minutes past the included ones are overage, metered
  through Polar (each call's usage event carries its `overage_minutes`).
- `over_limit="stop"`: past the included minutes, calls are no longer answered by the AI but forwarded to the
  owner's transfer number (else the fallback message).
- `rounding="minute"` bills every started minute of a call; `"second"` bills exact seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

OverLimit = Literal["overage", "stop"]
Rounding = Literal["minute", "second"]
TRIAL_KEY = "trial"
WARNING_THRESHOLDS = (80, 100)


class PlanError(ValueError):
    """POLAR_PLANS (or FREE_TRIAL_MINUTES) is malformed; the message says how."""


@dataclass(frozen=True, slots=True)
class Plan:
    key: str
    name: str
    included_minutes: int
    over_limit: OverLimit = "stop"
    rounding: Rounding = "minute"
    # The Polar product behind a paid plan; None for the free trial.
    product_id: str | None = None
    # Shown beside the Upgrade button ("$29 / month"); Polar's checkout shows the authoritative price.
    price_label: str = ""

    @property
    def is_trial(self) -> bool:
        return self.product_id is None


def trial_plan(minutes: int) -> Plan:
    return Plan(key=TRIAL_KEY, name="Free trial", included_minutes=minutes, over_limit="stop", rounding="minute")


def parse_plans(raw: str | None, legacy_product_id: str | None = None) -> tuple[Plan, ...]:
    """POLAR_PLANS: a JSON list of {"key", "name", "product_id", "included_minutes", "over_limit", "rounding",
    "price_label"}. Without it, a lone POLAR_PRODUCT_ID is one "Pro" plan (500 minutes, overage billed)."""
    if not raw:
        if legacy_product_id:
            return (Plan(key="pro", name="Pro", included_minutes=500, over_limit="overage",
                         product_id=legacy_product_id),)
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        raise PlanError("POLAR_PLANS must be a JSON list of plans") from None
    if not isinstance(items, list):
        raise PlanError("POLAR_PLANS must be a JSON list of plans")
    plans: list[Plan] = []
    for index, item in enumerate(items):
        where = f"POLAR_PLANS[{index}]"
        if not isinstance(item, dict):
            raise PlanError(f"{where} must be an object")
        key, product_id = item.get("key"), item.get("product_id")
        if not isinstance(key, str) or not key.strip() or key == TRIAL_KEY or len(key) > 40:
            raise PlanError(f"{where}.key must be a short name other than {TRIAL_KEY!r}")
        if not isinstance(product_id, str) or not product_id.strip():
            raise PlanError(f"{where}.product_id must be the Polar product id")
        minutes = item.get("included_minutes")
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0:
            raise PlanError(f"{where}.included_minutes must be a whole number of minutes (0 or more)")
        over_limit = item.get("over_limit", "stop")
        if over_limit not in ("overage", "stop"):
            raise PlanError(f"{where}.over_limit must be \"overage\" or \"stop\", got {over_limit!r}")
        rounding = item.get("rounding", "minute")
        if rounding not in ("minute", "second"):
            raise PlanError(f"{where}.rounding must be \"minute\" or \"second\", got {rounding!r}")
        plans.append(Plan(key=key.strip(), name=str(item.get("name") or key).strip(), included_minutes=minutes,
                          over_limit=over_limit, rounding=rounding, product_id=product_id.strip(),
                          price_label=str(item.get("price_label") or "")))
    keys = [p.key for p in plans]
    products = [p.product_id for p in plans]
    if len(set(keys)) != len(keys) or len(set(products)) != len(products):
        raise PlanError("POLAR_PLANS: every plan needs its own key and its own product_id")
    return tuple(plans)


def plan_for_product(plans: tuple[Plan, ...], product_id: str) -> Plan | None:
    return next((p for p in plans if p.product_id == product_id), None)


def plan_by_key(plans: tuple[Plan, ...], key: str) -> Plan | None:
    return next((p for p in plans if p.key == key), None)
