"""The service's own Twilio numbers (IncomingPhoneNumbers), through the twilio SDK's async client.

Invariant: a business can only hold a number that is an incoming number of the service's Twilio account, and
holding it means its webhooks point here: voice URL `PUBLIC_BASE_URL/twilio/voice` and status callback
`PUBLIC_BASE_URL/twilio/status`, both POST. Releasing it clears them. Buying (AvailablePhoneNumbers, then a
purchase) exists only when the operator sets `TWILIO_ALLOW_PURCHASE`.

This module speaks to Twilio only; `app.telephony.number_assignments` ties numbers to businesses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from app.settings import Settings
from app.telephony.rest import OriginRewritingHttpClient, TwilioUnavailable

log = logging.getLogger(__name__)

MAX_NUMBERS_LISTED = 500
MAX_SEARCH_RESULTS = 20
NOT_FOUND_CODES = {20404}


class NumberNotInAccount(Exception):
    """The number is not one of the service account's incoming numbers."""


class TwilioRefused(Exception):
    """Twilio answered with an error the owner should read (`code` is Twilio's error code)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class AccountNumber:
    sid: str
    phone_number: str
    friendly_name: str
    voice_url: str
    voice_method: str
    status_callback: str
    status_callback_method: str

    def points_at(self, voice_url: str, status_url: str) -> bool:
        """True when Twilio will send this number's calls and their status to this service."""
        return (self.voice_url == voice_url and self.voice_method.upper() == "POST"
                and self.status_callback == status_url and self.status_callback_method.upper() == "POST")

    def points_elsewhere(self) -> bool:
        return bool(self.voice_url)


@dataclass(frozen=True, slots=True)
class AvailableNumber:
    phone_number: str
    friendly_name: str
    locality: str
    region: str
    iso_country: str


def _account_number(instance: Any) -> AccountNumber:
    return AccountNumber(
        sid=instance.sid,
        phone_number=instance.phone_number or "",
        friendly_name=instance.friendly_name or "",
        voice_url=instance.voice_url or "",
        voice_method=instance.voice_method or "POST",
        status_callback=instance.status_callback or "",
        status_callback_method=instance.status_callback_method or "POST",
    )


class TwilioNumbers:
    """One Twilio account's phone numbers; every method raises `TwilioUnavailable` when Twilio can't be reached
    and `TwilioRefused` when it answers with an error."""

    def __init__(self, settings: Settings) -> None:
        if not settings.twilio_configured:
            raise ValueError("Twilio is not configured")
        assert settings.twilio_account_sid and settings.twilio_auth_token
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                              http_client=OriginRewritingHttpClient(settings.twilio_api_base_url))
        self.voice_url = settings.public_base_url.rstrip("/") + "/twilio/voice"
        self.status_url = settings.public_base_url.rstrip("/") + "/twilio/status"
        self.allow_purchase = settings.twilio_allow_purchase

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioNumbers | None:
        return cls(settings) if settings.twilio_configured else None

    async def _call(self, what: str, coroutine: Any) -> Any:
        try:
            return await coroutine
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in NOT_FOUND_CODES:
                raise NumberNotInAccount(what) from exc
            raise TwilioRefused(f"Twilio refused to {what} ({exc.status}, code {exc.code}): {exc.msg}",
                                exc.code) from exc
        except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TwilioUnavailable(f"could not reach Twilio to {what}: {exc!r}") from exc

    async def list(self) -> list[AccountNumber]:
        """Every incoming number of the account (the SDK follows Twilio's pages)."""
        rows = await self._call("list the account's numbers", self._client.incoming_phone_numbers.list_async(
            limit=MAX_NUMBERS_LISTED, page_size=100))
        return [_account_number(r) for r in rows]

    async def fetch(self, sid: str) -> AccountNumber:
        """The number with this sid in this account; `NumberNotInAccount` otherwise (Twilio scopes the URL to
        the account, so another account's number is a 404 too)."""
        if not (sid.startswith("PN") and len(sid) == 34 and sid[2:].isalnum()):
            raise NumberNotInAccount(sid)
        return _account_number(await self._call(
            "read the number", self._client.incoming_phone_numbers(sid).fetch_async()))

    async def configure(self, sid: str) -> AccountNumber:
        """Point the number's calls and call status at this service."""
        updated = await self._call("set the number's webhooks", self._client.incoming_phone_numbers(sid).update_async(
            voice_url=self.voice_url, voice_method="POST",
            status_callback=self.status_url, status_callback_method="POST"))
        log.info("twilio number %s: webhooks set", sid)
        return _account_number(updated)

    async def clear(self, sid: str) -> AccountNumber:
        """Stop sending the number's calls here (the number stays in the account)."""
        updated = await self._call("clear the number's webhooks", self._client.incoming_phone_numbers(sid).update_async(
            voice_url="", status_callback=""))
        log.info("twilio number %s: webhooks cleared", sid)
        return _account_number(updated)

    async def search_local(self, country: str, area_code: str | None = None) -> list[AvailableNumber]:
        kwargs: dict[str, Any] = {"limit": MAX_SEARCH_RESULTS, "voice_enabled": True}
        if area_code:
            kwargs["area_code"] = area_code
        rows = await self._call("search for numbers",
                                self._client.available_phone_numbers(country).local.list_async(**kwargs))
        return [AvailableNumber(r.phone_number, r.friendly_name or r.phone_number, r.locality or "", r.region or "",
                                r.iso_country or country) for r in rows]

    async def purchase(self, phone_number: str) -> AccountNumber:
        """Buy an available number into the account, already pointed at this service."""
        if not self.allow_purchase:
            raise TwilioRefused("buying numbers is turned off on this service (TWILIO_ALLOW_PURCHASE)")
        created = await self._call("buy the number", self._client.incoming_phone_numbers.create_async(
            phone_number=phone_number, voice_url=self.voice_url, voice_method="POST",
            status_callback=self.status_url, status_callback_method="POST"))
        log.info("twilio number %s bought", created.sid)
        return _account_number(created)
