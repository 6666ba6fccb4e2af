"""Billing's costs on the event loop: loading a Polar webhook and pricing a call's usage.

    .venv/bin/python bench/bench_billing.py            # short form (200 rounds)
    .venv/bin/python bench/bench_billing.py --rounds 2000

Measures, in one process:
- polar-sdk's import plus the webhook loaders built at start-up (`load_sdk`, run in a thread by the app);
- the first load of a `subscription.*` payload into its own class versus into the 42-member `WebhookPayload`
  union (why the service loads each event into its own class);
- per webhook after warm-up: Standard Webhooks verification + typed load (p50/p95);
- per call: genai-prices pricing of one call's three usage sources (p50/p95).
Floors (the run fails above them), on the median because p95 on this shared machine measures its load:
webhook verify+load p50 < 2 ms, pricing one call p50 < 5 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEBHOOK_P50_FLOOR_MS = 2.0
PRICING_P50_FLOOR_MS = 5.0


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from app.billing.polar import load_sdk

    load_sdk()
    startup_s = time.perf_counter() - t0

    from app.billing.pricing import TokenUsage, cost_usd, warm_price_table
    from app.billing.webhooks import load, verify
    from tests.doubles.polar_double import Customer, PolarDouble, SubscriptionState

    double = PolarDouble(products={"prod": "Plan"})
    customer = Customer(id="c", external_id="u", email="e@example.com")
    sub = SubscriptionState(id="s", customer=customer, product_id="prod")
    body = double.payload("subscription.updated", double.subscription_object(sub))

    from polar.base import deserialize
    from polar.v2026_04.webhooks import WebhookPayload

    t0 = time.perf_counter()
    deserialize(json.loads(body), WebhookPayload)
    union_first_s = time.perf_counter() - t0

    webhook_ms: list[float] = []
    for _ in range(args.rounds):
        headers = double.signed_headers(body)
        t0 = time.perf_counter()
        verify(body.encode(), headers, double.webhook_secret)
        load(body.encode())
        webhook_ms.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    warm_price_table()
    price_warm_s = time.perf_counter() - t0
    usage = {"realtime": ("gpt-realtime-2", TokenUsage(text_input=4000, text_cached_input=20000, audio_input=9000,
                                                       audio_cached_input=30000, text_output=900, audio_output=6000,
                                                       text_reasoning=300)),
             "transcription": ("gpt-4o-mini-transcribe", TokenUsage(audio_input=3000, text_output=200)),
             "supervisor": ("gpt-4.1", TokenUsage(text_input=12000, text_cached_input=30000, text_output=400))}
    pricing_ms: list[float] = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for model, tokens in usage.values():
            cost_usd(model, tokens)
        pricing_ms.append((time.perf_counter() - t0) * 1000)

    print(f"polar-sdk import + webhook loaders (start-up, in a thread): {startup_s:.2f} s")
    print(f"first load into the WebhookPayload union: {union_first_s:.2f} s (the service never does this)")
    print(f"webhook verify + typed load: p50 {statistics.median(webhook_ms):.3f} ms, p95 {_p95(webhook_ms):.3f} ms")
    print(f"genai-prices snapshot warm-up (start-up, in a thread): {price_warm_s:.2f} s")
    print(f"pricing one call (3 sources): p50 {statistics.median(pricing_ms):.3f} ms, p95 {_p95(pricing_ms):.3f} ms")
    failed = False
    if statistics.median(webhook_ms) > WEBHOOK_P50_FLOOR_MS:
        print(f"FAIL: webhook p50 above {WEBHOOK_P50_FLOOR_MS} ms")
        failed = True
    if statistics.median(pricing_ms) > PRICING_P50_FLOOR_MS:
        print(f"FAIL: pricing p50 above {PRICING_P50_FLOOR_MS} ms")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
