"""The phone side as the call runtime sees it: the runtime (app/voice) knows no vendor; this module gives it what
a phone line adds (the transfer rules) and registers the phone's own job kinds (voicemail, phone cost), after the
runtime has started. Imports point one way: telephony -> voice."""

from __future__ import annotations

from litestar import Litestar

from app.db.models import Business
from app.settings import Settings
from app.telephony.call_cost import PhoneCosts
from app.telephony.rest import TwilioCalls
from app.telephony.transfers import usable_transfer_number
from app.telephony.voicemail import Voicemails
from app.voice.runtime import get_runtime


class PhoneLine:
    """`app.voice.runtime.Telephony` for Twilio."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def transfer_number(self, business: Business) -> str | None:
        return usable_transfer_number(business, self._settings)


async def start_telephony(app: Litestar) -> None:
    """After the call runtime (which builds `app.state.jobs`)."""
    runtime = get_runtime(app)
    runtime.telephony = PhoneLine(runtime.settings)
    Voicemails(runtime.db, runtime.settings, runtime.summary_client_factory(),
               TwilioCalls.from_settings(runtime.settings)).register(runtime.jobs)
    PhoneCosts(runtime.db, TwilioCalls.from_settings(runtime.settings)).register(runtime.jobs)  # issue 16 item 6
