"""Token usage → US dollars, priced by the maintained `genai-prices` table (its bundled snapshot).

- Prices come from genai-prices' snapshot shipped in the installed release (`PRICES_AS_OF` names it); its
  `UpdatePrices` background refresh stays off, so a price never changes under a running call and nothing is
  downloaded at run time. `PRICE_OVERRIDES` (Settings.price_overrides: per-model USD per million tokens per
  token kind, `PRICE_KEYS`) replaces single figures for operators with negotiated prices, or prices a model
  the table lacks.
- Cached input is *part of* the input count the APIs report; `TokenUsage` keeps it apart so each kind is
  priced once. Reasoning tokens are output text tokens (billed at the text output rate): the Responses API
  counts them inside `output_tokens`, the Realtime API inside `output_tokens` but outside its text/audio split.
- A model neither the table nor the overrides price costs `None` ("price unknown"), never $0; it is logged
  once per process so a busy line doesn't repeat the warning on every call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from copy import copy
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import Usage
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelPrice, TieredPrices

log = logging.getLogger(__name__)

PRICES_AS_OF = f"genai-prices {genai_prices.__version__}"
PROVIDER = "openai"

PRICE_KEYS = (
    "text_input",
    "text_cached_input",
    "text_output",
    "audio_input",
    "audio_cached_input",
    "audio_output",
)
# Our per-kind override names → genai-prices' per-million price keys. Text input is its base input rate (audio
# has its own key); reasoning has no key of its own here, so it is priced as text output.
_GENAI_KEYS = {
    "text_input": "input_mtok",
    "text_cached_input": "cache_read_mtok",
    "text_output": "output_mtok",
    "audio_input": "input_audio_mtok",
    "audio_cached_input": "cache_audio_read_mtok",
    "audio_output": "output_audio_mtok",
}
_unknown_logged: set[str] = set()


def warm_price_table() -> None:
    """Load genai-prices' bundled snapshot (a large module, ~0.5–1.5 s) now: call it off the event loop at
    start-up, or the first finished call would pay for it on the loop, stalling every live call's audio."""
    get_snapshot().find_provider_model("gpt-realtime", None, PROVIDER, None)


@dataclass(slots=True)
class TokenUsage:
    """Token counts split the way they are priced; `*_cached` are already excluded from `*_input`, and
    `text_reasoning` from `text_output`."""

    text_input: int = 0
    text_cached_input: int = 0
    text_output: int = 0
    audio_input: int = 0
    audio_cached_input: int = 0
    audio_output: int = 0
    text_reasoning: int = 0

    def add(self, other: TokenUsage) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def input_tokens(self) -> int:
        return self.text_input + self.text_cached_input + self.audio_input + self.audio_cached_input

    @property
    def output_tokens(self) -> int:
        return self.text_output + self.text_reasoning + self.audio_output

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenUsage:
        return cls(**{f.name: int(data.get(f.name, 0) or 0) for f in fields(cls)})

    def as_genai_usage(self) -> Usage:
        """genai-prices' overlapping counts: totals per direction, with audio and cache reads as subsets."""
        return Usage(
            input_tokens=self.input_tokens,
            cache_read_tokens=self.text_cached_input + self.audio_cached_input,
            input_audio_tokens=self.audio_input + self.audio_cached_input,
            cache_audio_read_tokens=self.audio_cached_input,
            output_tokens=self.output_tokens,
            output_audio_tokens=self.audio_output,
        )


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
        # realtime model priced today, so attributing it to text prices it correctly.
        cached_text = _int(inp, "cached_tokens")
    text_out, audio_out = _int(out, "text_tokens"), _int(out, "audio_tokens")
    # Reasoning models (session.reasoning.effort) count their reasoning in output_tokens but in neither
    # modality of the split; an explicit reasoning_tokens detail wins when the payload has one.
    reasoning = _int(out, "reasoning_tokens") or max(0, _int(usage, "output_tokens") - text_out - audio_out)
    return TokenUsage(
        text_input=max(0, _int(inp, "text_tokens") - cached_text),
        text_cached_input=cached_text,
        audio_input=max(0, _int(inp, "audio_tokens") - cached_audio),
        audio_cached_input=cached_audio,
        text_output=max(0, text_out - _int(out, "reasoning_tokens")) if _int(out, "reasoning_tokens") else text_out,
        audio_output=audio_out,
        text_reasoning=reasoning,
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
    """Responses API `usage`: input_tokens (cached included), output_tokens (reasoning included)."""
    if not usage:
        return TokenUsage()
    cached = _int(usage.get("input_tokens_details"), "cached_tokens")
    reasoning = _int(usage.get("output_tokens_details"), "reasoning_tokens")
    return TokenUsage(
        text_input=max(0, _int(usage, "input_tokens") - cached),
        text_cached_input=cached,
        text_output=max(0, _int(usage, "output_tokens") - reasoning),
        text_reasoning=reasoning,
    )


def table_price(model: str, at: datetime | None = None) -> ModelPrice | None:
    """genai-prices' price for `model` (dated snapshots and aliases resolved by its own matching)."""
    try:
        _provider, info = get_snapshot().find_provider_model(model, None, PROVIDER, None)
    except LookupError:
        return None
    return info.get_prices(at or datetime.now(UTC))


def model_price(model: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> ModelPrice | None:
    """The table's price for `model` with the operator's overrides laid over it; None when neither prices it."""
    base = table_price(model)
    own = {_GENAI_KEYS[k]: Decimal(str(v)) for k, v in ((overrides or {}).get(model) or {}).items()
           if k in _GENAI_KEYS}
    if base is None and not own:
        return None
    price = copy(base) if base is not None else ModelPrice()
    price.__dict__.update(own)
    return price


def rates_per_million(model: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, float]:
    """USD per million tokens per kind, as this module prices them (what the pricing table test checks)."""
    price = model_price(model, overrides)
    if price is None:
        return {}
    rates: dict[str, float] = {}
    for key in PRICE_KEYS:
        probe = TokenUsage(**{key: 1_000_000})
        rates[key] = float(price.calc_price(probe.as_genai_usage())["total_price"])
    return rates


@functools.lru_cache(maxsize=256)
def _linear_rates(model: str, own: tuple[tuple[str, float], ...]) -> tuple[float, ...] | None:
    """Per-token USD per kind (PRICE_KEYS order), or None when a price is tiered (then the library computes)."""
    price = model_price(model, {model: dict(own)} if own else None)
    if price is None or any(isinstance(v, TieredPrices) for v in price.__dict__.values()):
        return None
    rates = rates_per_million(model, {model: dict(own)} if own else None)
    return tuple(rates[k] / 1_000_000 for k in PRICE_KEYS)


def cost_usd(model: str, usage: TokenUsage, overrides: Mapping[str, Mapping[str, float]] | None = None) -> float | None:
    """What `usage` of `model` costs in USD, or None when no price is known for the model.

    Called per turn on the event loop: flat prices are read once per model into per-token rates (genai-prices'
    own calculation costs ~0.4 ms per call on this machine); reasoning is priced as text output."""
    own = tuple(sorted(((overrides or {}).get(model) or {}).items()))
    rates = _linear_rates(model, own) if model_price(model, overrides) is not None else None
    if rates is not None:
        counts = (usage.text_input, usage.text_cached_input, usage.text_output + usage.text_reasoning,
                  usage.audio_input, usage.audio_cached_input, usage.audio_output)
        return round(sum(c * r for c, r in zip(counts, rates, strict=True)), 6)
    price = model_price(model, overrides)
    if price is None:
        if model not in _unknown_logged:
            _unknown_logged.add(model)
            log.warning("no price for model %s (not in %s, not in PRICE_OVERRIDES): its cost shows as unknown",
                        model, PRICES_AS_OF)
        return None
    return round(float(price.calc_price(usage.as_genai_usage())["total_price"]), 6)


# -- GPT-Live (issue 12): billed by session time, not tokens ----------------------------------------------
LIVE_PRICES_AS_OF = "2026-11-20"
LIVE_PRICE_KEYS = ("active_minute", "standby_minute")
# USD per minute, billed per second (not rounded up). gpt-live-1 and gpt-live-1.1 are priced the same;
# standby applies only while inference is paused (WebRTC standby), which the SDK reports as paused_seconds.
LIVE_PRICES: dict[str, dict[str, float]] = {
    "gpt-live-1": {"active_minute": 0.05, "standby_minute": 0.02},
    "gpt-live-1.1": {"active_minute": 0.05, "standby_minute": 0.02},
}


def _live_prices_for(model: str, table: Mapping[str, Mapping[str, float]]) -> Mapping[str, float] | None:
    """Exact name first, then the longest table name the model starts with (dated snapshots)."""
    if model in table:
        return table[model]
    candidates = [name for name in table if model.startswith(name)]
    return table[max(candidates, key=len)] if candidates else None


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
    prices = _live_prices_for(model, table)
    if prices is None:
        log.warning("no price for live model %s; its session time is counted at $0", model)
        return 0.0
    active = max(0.0, float(active_seconds)) * prices.get("active_minute", 0.0) / 60
    standby = max(0.0, float(standby_seconds)) * prices.get("standby_minute", 0.0) / 60
    return round(active + standby, 6)
