"""Usage → cost: the dated price table, overrides, cached input, and each API's usage shape."""

from __future__ import annotations

import pytest

from app.billing.pricing import (
    PRICES_AS_OF,
    TokenUsage,
    cost_usd,
    from_realtime,
    from_responses,
    from_transcription,
    price_table,
    prices_for,
)


def test_realtime_usage_splits_cached_tokens_out_of_input() -> None:
    usage = from_realtime({
        "total_tokens": 1500, "input_tokens": 1000, "output_tokens": 500,
        "input_token_details": {"text_tokens": 600, "audio_tokens": 400, "cached_tokens": 300,
                                "cached_tokens_details": {"text_tokens": 200, "audio_tokens": 100}},
        "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
    })
    assert usage == TokenUsage(text_input=400, text_cached_input=200, text_output=100,
                               audio_input=300, audio_cached_input=100, audio_output=400)
    assert usage.input_tokens == 1000 and usage.output_tokens == 500


def test_realtime_cost_uses_every_rate() -> None:
    usage = TokenUsage(text_input=1_000_000, text_cached_input=1_000_000, text_output=1_000_000,
                       audio_input=1_000_000, audio_cached_input=1_000_000, audio_output=1_000_000)
    # gpt-realtime: 4 + 0.4 + 16 + 32 + 0.4 + 64
    assert cost_usd("gpt-realtime", usage) == pytest.approx(116.8)


def test_transcription_and_responses_usage() -> None:
    t = from_transcription({"type": "tokens", "input_tokens": 120, "output_tokens": 20, "total_tokens": 140,
                            "input_token_details": {"audio_tokens": 100, "text_tokens": 20}})
    assert (t.audio_input, t.text_input, t.text_output) == (100, 20, 20)
    assert from_transcription({"type": "duration", "seconds": 3}) == TokenUsage()
    r = from_responses({"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 400}, "output_tokens": 50})
    assert (r.text_input, r.text_cached_input, r.text_output) == (600, 400, 50)
    # gpt-4.1: 600 × $2 + 400 × $0.5 + 50 × $8 per million
    assert cost_usd("gpt-4.1", r) == pytest.approx((600 * 2 + 400 * 0.5 + 50 * 8) / 1e6)


def test_overrides_replace_single_prices_and_add_models() -> None:
    usage = TokenUsage(audio_input=1_000_000)
    assert cost_usd("gpt-realtime", usage) == pytest.approx(32.0)
    assert cost_usd("gpt-realtime", usage, {"gpt-realtime": {"audio_input": 10.0}}) == pytest.approx(10.0)
    assert cost_usd("my-model", TokenUsage(text_output=2_000_000), {"my-model": {"text_output": 1.5}}) == 3.0
    table = price_table({"gpt-realtime": {"audio_input": 10.0}})
    assert table["gpt-realtime"]["audio_output"] == 64.0  # the rest of the row stays


def test_dated_snapshots_find_their_family_and_unknown_models_cost_nothing() -> None:
    table = price_table()
    assert prices_for("gpt-realtime-2025-08-28", table) is table["gpt-realtime"]
    assert prices_for("gpt-realtime-mini-2025-10-06", table) is table["gpt-realtime-mini"]
    assert cost_usd("no-such-model", TokenUsage(text_input=10**6)) == 0.0
    assert PRICES_AS_OF[:4].isdigit()


def test_no_cached_rate_means_full_input_rate() -> None:
    usage = TokenUsage(audio_cached_input=1_000_000)
    assert cost_usd("gpt-4o-mini-transcribe", usage) == pytest.approx(3.0)
