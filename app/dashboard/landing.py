"""The public face at `/` for visitors: what the receptionist does, how it sounds, what it costs, sign-in.

The page has no per-visitor data, so it is the same for everyone (cacheable by the ETag middleware).
Pricing comes from configuration: the free trial and each plan the operator sells through Polar (POLAR_PLANS,
with their included minutes), and what a minute costs in model usage at the realtime model's prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import MediaType
from litestar.response import Template

from app.billing.pricing import PRICES_AS_OF, rates_per_million
from app.settings import Settings
from app.web.rendering import SlicedTemplate

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
    prices = rates_per_million(settings.realtime_model, settings.price_overrides)
    if not prices:
        return None
    per_token = (prices["audio_input"] + prices["audio_output"]) / 1_000_000
    return AUDIO_TOKENS_PER_MINUTE * per_token


def landing_plans(settings: Settings) -> list[Plan]:
    plans = [Plan("Try it", "Free", f"Set up your receptionist, talk to it from your browser as often as you like, "
                                    f"and answer {settings.free_trial_minutes} minutes of real calls.")]
    for offered in settings.polar_plans:
        over = ("extra minutes are billed" if offered.over_limit == "overage"
                else "then calls go to your phone or voicemail")
        plans.append(Plan(offered.name, offered.price_label or "Monthly plan",
                          f"{offered.included_minutes} minutes of calls a month included; {over}. "
                          "Upgrade from the Billing page and pay securely online."))
    per_minute = usage_per_minute(settings)
    if per_minute is not None:
        plans.append(Plan(
            "Answering your calls", f"about ${per_minute:.2f} a minute",
            f"What the AI model costs for a minute of conversation ({settings.realtime_model}, prices as of "
            f"{PRICES_AS_OF}). Every call's exact cost is on your dashboard.",
        ))
    return plans


def landing_page(settings: Settings) -> Template:
    return SlicedTemplate(
        template_name="landing.html",
        context={"plans": landing_plans(settings), "sample_call": SAMPLE_CALL},
        media_type=MediaType.HTML,
    )
