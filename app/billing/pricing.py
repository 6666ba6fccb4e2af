"""Token usage → US dollars, from a dated table of per-model prices (USD per 1M tokens).

Prices change; the table says when it was read, and `PRICE_OVERRIDES` (Settings.price_overrides) replaces any
figure without a release. Cached input is billed at its own rate and is *part of* the input count the APIs
report, so it is subtracted before the full input rate applies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

log = logging.getLogger(__name__)

PRICES_AS_OF = "2025-09-01"

PRICE_KEYS = (
    "text_input",
    "text_cached_input",
    "text_output",
    "audio_input",
    "audio_cached_input",
    "audio_output",
)

# USD per 1M tokens, from OpenAI's published pricing on PRICES_AS_OF.
PRICES: dict[str, dict[str, float]] = {
    "gpt-realtime": {
        "text_input": 4.0, "text_cached_input": 0.4, "text_output": 16.0,
        "audio_input": 32.0, "audio_cached_input": 0.4, "audio_output": 64.0,
    },
    "gpt-realtime-2.1": {
        "text_input": 4.0, "text_cached_input": 0.4, "text_output": 24.0,
        "audio_input": 32.0, "audio_cached_input": 0.4, "audio_output": 64.0,
    },
    "gpt-realtime-2.1-mini": {
        "text_input": 0.6, "text_cached_input": 0.06, "text_output": 2.4,
        "audio_input": 10.0, "audio_cached_input": 0.3, "audio_output": 20.0,
    },
    "gpt-realtime-mini": {
        "text_input": 0.6, "text_cached_input": 0.06, "text_output": 2.4,
        "audio_input": 10.0, "audio_cached_input": 0.3, "audio_output": 20.0,
    },
    "gpt-4o-realtime-preview": {
        "text_input": 5.0, "text_cached_input": 2.5, "text_output": 20.0,
        "audio_input": 40.0, "audio_cached_input": 2.5, "audio_output": 80.0,
    },
    "gpt-4o-mini-transcribe": {"text_input": 1.25, "audio_input": 3.0, "text_output": 5.0},
    "gpt-4o-transcribe": {"text_input": 2.5, "audio_input": 6.0, "text_output": 10.0},
    "gpt-4.1": {"text_input": 2.0, "text_cached_input": 0.5, "text_output": 8.0},
    "gpt-4.1-mini": {"text_input": 0.4, "text_cached_input": 0.1, "text_output": 1.6},
    "gpt-4.1-nano": {"text_input": 0.1, "text_cached_input": 0.025, "text_output": 0.4},
    "gpt-5": {"text_input": 1.25, "text_cached_input": 0.125, "text_output": 10.0},
    "gpt-5-mini": {"text_input": 0.25, "text_cached_input": 0.025, "text_output": 2.0},
}


@dataclass(slots=True)
class TokenUsage:
    """Token counts split the way they are priced; `*_cached` are already excluded from `*_input`."""

    text_input: int = 0
    text_cached_input: int = 0
    text_output: int = 0
    audio_input: int = 0
    audio_cached_input: int = 0
    audio_output: int = 0

    def add(self, other: TokenUsage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def input_tokens(self) -> int:
        return self.text_input + self.text_cached_input + self.audio_input + self.audio_cached_input

    @property
    def output_tokens(self) -> int:
        return self.text_output + self.audio_output

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenUsage:
        return cls(**{k: int(data.get(k, 0) or 0) for k in PRICE_KEYS})


def _int(data: Mapping[str, Any] | None, key: str) -> int:
    if not data:
        return 0
    value = data.get(key)
    return int(value) if isinstance(value, int | float) else 0


def from_realtime(usage: Mapping[str, Any] | None) -> TokenUsage:
    """`response.done.response.usage` of the Realtime API."""
    if not usage:
        return TokenUsage()
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    cached = inp.get("cached_tokens_details") or {}
    cached_text, cached_audio = _int(cached, "text_tokens"), _int(cached, "audio_tokens")
    if not cached and _int(inp, "cached_tokens"):
        # Payloads without the split give only a total; cached text and audio share one rate on every
        # realtime model in the table, so attributing it to text prices it correctly.
        cached_text = _int(inp, "cached_tokens")
    return TokenUsage(
        text_input=max(0, _int(inp, "text_tokens") - cached_text),
        text_cached_input=cached_text,
        audio_input=max(0, _int(inp, "audio_tokens") - cached_audio),
        audio_cached_input=cached_audio,
        text_output=_int(out, "text_tokens"),
        audio_output=_int(out, "audio_tokens"),
    )


def from_transcription(usage: Mapping[str, Any] | None) -> TokenUsage:
    """`conversation.item.input_audio_transcription.completed.usage` (token-based form)."""
    if not usage or usage.get("type", "tokens") != "tokens":
        return TokenUsage()
    details = usage.get("input_token_details") or {}
    audio = _int(details, "audio_tokens")
    text = _int(details, "text_tokens")
    if not details:
        audio = _int(usage, "input_tokens")
    return TokenUsage(text_input=text, audio_input=audio, text_output=_int(usage, "output_tokens"))


def from_responses(usage: Mapping[str, Any] | None) -> TokenUsage:
    """Responses API `usage`: input_tokens (cached included), output_tokens."""
    if not usage:
        return TokenUsage()
    cached = _int(usage.get("input_tokens_details"), "cached_tokens")
    return TokenUsage(
        text_input=max(0, _int(usage, "input_tokens") - cached),
        text_cached_input=cached,
        text_output=_int(usage, "output_tokens"),
    )


def price_table(overrides: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, dict[str, float]]:
    table = {model: dict(prices) for model, prices in PRICES.items()}
    for model, prices in (overrides or {}).items():
        table.setdefault(model, {}).update({k: float(v) for k, v in prices.items() if k in PRICE_KEYS})
    return table


def prices_for(model: str, table: Mapping[str, Mapping[str, float]]) -> Mapping[str, float] | None:
    """Exact name first, then the longest table name the model starts with (dated snapshots)."""
    if model in table:
        return table[model]
    candidates = [name for name in table if model.startswith(name)]
    return table[max(candidates, key=len)] if candidates else None


def cost_usd(model: str, usage: TokenUsage, overrides: Mapping[str, Mapping[str, float]] | None = None) -> float:
    prices = prices_for(model, price_table(overrides))
    if prices is None:
        log.warning("no price for model %s; its usage is counted at $0", model)
        return 0.0
    total = 0.0
    for key in PRICE_KEYS:
        rate = prices.get(key)
        if rate is None and key.endswith("cached_input"):
            rate = prices.get(key.replace("cached_", ""))  # no cache discount listed: full input rate
        total += getattr(usage, key) * (rate or 0.0) / 1_000_000
    return round(total, 6)


# -- GPT-Live (issue 12): billed by session time, not tokens ----------------------------------------------
LIVE_PRICES_AS_OF = "2026-11-20"
LIVE_PRICE_KEYS = ("active_minute", "standby_minute")
# USD per minute, billed per second (not rounded up). gpt-live-1 and gpt-live-1.1 are priced the same;
# standby applies only while inference is paused (WebRTC standby), which the SDK reports as paused_seconds.
LIVE_PRICES: dict[str, dict[str, float]] = {
    "gpt-live-1": {"active_minute": 0.05, "standby_minute": 0.02},
    "gpt-live-1.1": {"active_minute": 0.05, "standby_minute": 0.02},
}


def live_cost_usd(
    model: str,
    active_seconds: float,
    standby_seconds: float = 0.0,
    overrides: Mapping[str, Mapping[str, float]] | None = None,
) -> float:
    """A Live session's voice cost from its cumulative usage; `PRICE_OVERRIDES` may carry a model's
    `active_minute` / `standby_minute` (USD per minute). The backend's tokens are priced apart."""
    table = {name: dict(prices) for name, prices in LIVE_PRICES.items()}
    for name, prices in (overrides or {}).items():
        picked = {k: float(v) for k, v in prices.items() if k in LIVE_PRICE_KEYS}
        if picked:
            table.setdefault(name, {}).update(picked)
    prices = prices_for(model, table)
    if prices is None:
        log.warning("no price for live model %s; its session time is counted at $0", model)
        return 0.0
    active = max(0.0, float(active_seconds)) * prices.get("active_minute", 0.0) / 60
    standby = max(0.0, float(standby_seconds)) * prices.get("standby_minute", 0.0) / 60
    return round(active + standby, 6)
