"""Usage → cost: genai-prices' table per model, overrides, cached input, reasoning, and each API's usage shape."""

from __future__ import annotations

import pytest

from app.billing.pricing import (
    PRICES_AS_OF,
    TokenUsage,
    cost_usd,
    from_realtime,
    from_responses,
    from_transcription,
    rates_per_million,
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
    rates = rates_per_million("gpt-realtime", {"gpt-realtime": {"audio_input": 10.0}})
    assert rates["audio_input"] == 10.0 and rates["audio_output"] == 64.0  # the rest of the row stays


def test_dated_snapshots_find_their_family_and_unknown_models_have_no_price(caplog: pytest.LogCaptureFixture) -> None:
    assert rates_per_million("gpt-realtime-2025-08-28") == rates_per_million("gpt-realtime")
    assert rates_per_million("gpt-realtime-mini-2025-10-06") == rates_per_million("gpt-realtime-mini")
    with caplog.at_level("WARNING", logger="app.billing.pricing"):
        assert cost_usd("no-such-model", TokenUsage(text_input=10**6)) is None  # "price unknown", never $0
        assert cost_usd("no-such-model", TokenUsage(text_input=10**6)) is None
    assert sum("no-such-model" in r.getMessage() for r in caplog.records) == 1  # logged once
    assert PRICES_AS_OF.startswith("genai-prices ")


def test_no_cached_rate_means_full_input_rate() -> None:
    usage = TokenUsage(audio_cached_input=1_000_000)
    assert cost_usd("gpt-4o-mini-transcribe", usage) == pytest.approx(3.0)


# Published USD per 1M tokens: text in / cached / out, audio in / cached / out (PROTOCOLS.md; OpenAI's pricing).
PUBLISHED = {
    "gpt-realtime-2": (4.0, 0.40, 24.0, 32.0, 0.40, 64.0),
    "gpt-realtime-2.1": (4.0, 0.40, 24.0, 32.0, 0.40, 64.0),
    "gpt-realtime-2.1-mini": (0.60, 0.06, 2.40, 10.0, 0.30, 20.0),
    "gpt-realtime-1.5": (4.0, 0.40, 16.0, 32.0, 0.40, 64.0),
    "gpt-realtime": (4.0, 0.40, 16.0, 32.0, 0.40, 64.0),
    "gpt-realtime-mini": (0.60, 0.06, 2.40, 10.0, 0.30, 20.0),
}
# Text models: input / cached / output; the transcription model: text in, audio in, text out.
PUBLISHED_TEXT = {"gpt-4.1": (2.0, 0.50, 8.0), "gpt-4.1-mini": (0.40, 0.10, 1.60)}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_realtime_model_prices_match_the_published_table(model: str) -> None:
    rates = rates_per_million(model)
    assert tuple(rates[k] for k in ("text_input", "text_cached_input", "text_output", "audio_input",
                                    "audio_cached_input", "audio_output")) == pytest.approx(PUBLISHED[model])


@pytest.mark.parametrize("model", sorted(PUBLISHED_TEXT))
def test_text_model_prices_match_the_published_table(model: str) -> None:
    rates = rates_per_million(model)
    assert (rates["text_input"], rates["text_cached_input"], rates["text_output"]) == pytest.approx(
        PUBLISHED_TEXT[model])


def test_transcription_model_prices_match_the_published_table() -> None:
    rates = rates_per_million("gpt-4o-mini-transcribe")
    assert (rates["text_input"], rates["audio_input"], rates["text_output"]) == pytest.approx((1.25, 3.0, 5.0))


def test_gpt_realtime_2_1_mini_is_not_priced_as_gpt_realtime() -> None:
    usage = TokenUsage(audio_input=1_000_000, audio_output=1_000_000)
    assert cost_usd("gpt-realtime-2.1-mini", usage) == pytest.approx(30.0)
    assert cost_usd("gpt-realtime", usage) == pytest.approx(96.0)


def test_reasoning_tokens_are_counted_at_the_text_output_rate() -> None:
    # Realtime: output_tokens counts reasoning outside the text/audio split.
    usage = from_realtime({"input_tokens": 0, "output_tokens": 1500,
                           "output_token_details": {"text_tokens": 200, "audio_tokens": 300}})
    assert (usage.text_output, usage.audio_output, usage.text_reasoning) == (200, 300, 1000)
    assert usage.output_tokens == 1500
    assert cost_usd("gpt-realtime-2", usage) == pytest.approx((1200 * 24 + 300 * 64) / 1e6)
    # Responses: reasoning is inside output_tokens, split out in output_tokens_details.
    r = from_responses({"input_tokens": 100, "output_tokens": 500, "output_tokens_details": {"reasoning_tokens": 400}})
    assert (r.text_output, r.text_reasoning, r.output_tokens) == (100, 400, 500)
    assert cost_usd("gpt-4.1", r) == pytest.approx((100 * 2 + 500 * 8) / 1e6)
    # A reasoning-rate override is the text-output override.
    assert cost_usd("gpt-4.1", r, {"gpt-4.1": {"text_output": 1.0}}) == pytest.approx((100 * 2 + 500 * 1) / 1e6)
