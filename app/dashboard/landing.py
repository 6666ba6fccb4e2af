"""The public face at `/` for visitors: what the receptionist does, how it sounds, what it costs, sign-in.

The page has no per-visitor data, so it is the same for everyone (cacheable by the ETag middleware).
Pricing comes from configuration: the plan the service sells (Polar checkout) when payments are set up,
and always what a call costs in model usage at the configured realtime model's published prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import MediaType
from litestar.response import Template

from app.billing.pricing import PRICES_AS_OF, price_table, prices_for
from app.settings import Settings

# A minute of conversation is about 600 audio tokens each way at OpenAI's published rate of 10 tokens/s
# per direction for realtime audio; the figure shown is an estimate and says so.
AUDIO_TOKENS_PER_MINUTE = 600

SAMPLE_CALL = (
    ("Receptionist", "Thanks for calling Bright Smiles Dental, how can I help you today?"),
    ("Caller", "Hi, can I book a check-up for Thursday morning?"),
    ("Receptionist", "Of course. I have nine thirty or eleven on Thursday. Which suits you?"),
    ("Caller", "Nine thirty, please."),
    ("Receptionist", "You're booked for a check-up on Thursday at nine thirty. We'll see you then!"),
)


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    price: str
    detail: str


def usage_per_minute(settings: Settings) -> float | None:
    prices = prices_for(settings.realtime_model, price_table(settings.price_overrides))
    if not prices:
        return None
    per_token = (prices["audio_input"] + prices["audio_output"]) / 1_000_000
    return AUDIO_TOKENS_PER_MINUTE * per_token


def landing_plans(settings: Settings) -> list[Plan]:
    plans = [Plan("Try it", "Free", "Set up your receptionist and talk to it from your browser as often as you like.")]
    per_minute = usage_per_minute(settings)
    if per_minute is not None:
        plans.append(Plan(
            "Answering your calls", f"about ${per_minute:.2f} a minute",
            f"What the AI model costs for a minute of conversation ({settings.realtime_model}, prices as of "
            f"{PRICES_AS_OF}). Every call's exact cost is on your dashboard.",
        ))
    if settings.polar_access_token:
        plans.append(Plan("Pro", "Monthly plan",
                          "Upgrade from the Billing page when you're ready; pay securely online."))
    return plans


def landing_page(settings: Settings) -> Template:
    return Template(
        template_name="landing.html",
        context={"plans": landing_plans(settings), "sample_call": SAMPLE_CALL},
        media_type=MediaType.HTML,
    )
