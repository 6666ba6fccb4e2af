"""Twilio's REST API for live calls (hang up, transfer), through the twilio SDK's async client.

Closing a media-stream WebSocket does not end a phone call: only the REST API does. The SDK always builds
`https://api.twilio.com/...` URLs; `TWILIO_API_BASE_URL` moves that origin (a regional proxy, or a local
protocol double in tests) by rewriting it in the HTTP client, so every other part of the SDK stays stock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.settings import DEFAULT_TWILIO_API_BASE_URL, Settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
# 20404: the call resource is gone; 21220: the call is no longer in progress. Either way it has ended.
CALL_ALREADY_ENDED_CODES = {20404, 21220}


class TwilioUnavailable(Exception):
    """Twilio could not be reached or refused the request; the message says which."""


class OriginRewritingHttpClient(AsyncTwilioHttpClient):
    """The SDK's async HTTP client, with `https://api.twilio.com` swapped for a configured origin."""

    def __init__(self, api_base_url: str, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        # No pooled session: a pool would need closing on shutdown, and a call makes two requests at most.
        super().__init__(pool_connections=False, timeout=timeout)
        self._origin = api_base_url.rstrip("/")

    def _rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        if not parts.netloc.endswith("twilio.com") or self._origin == DEFAULT_TWILIO_API_BASE_URL:
            return url
        return self._origin + url[len(f"{parts.scheme}://{parts.netloc}") :]

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        # Same request as the SDK's client, but with the Authorization header aiohttp now wants and a
        # session that is closed on every path, errors included.
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        kwargs: dict[str, Any] = {
            "method": method.upper(),
            "url": self._rewrite(url),
            "params": params,
            "data": data,
            "headers": all_headers,
            "timeout": aiohttp.ClientTimeout(total=timeout or self.timeout),
            "allow_redirects": allow_redirects,
        }
        async with aiohttp.ClientSession() as session, session.request(**kwargs) as response:
            result = Response(response.status, await response.text(), response.headers)
        log.debug("twilio %s %s -> %s", kwargs["method"], urlsplit(kwargs["url"]).path, result.status_code)
        return result


class TwilioCalls:
    """Hang up and redirect live calls of one account."""

    def __init__(self, account_sid: str, auth_token: str, api_base_url: str = DEFAULT_TWILIO_API_BASE_URL) -> None:
        self._http = OriginRewritingHttpClient(api_base_url)
        self._client = Client(account_sid, auth_token, http_client=self._http)

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioCalls | None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            return None
        return cls(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url)

    async def _update(self, call_sid: str, **fields: Any) -> bool:
        """True when Twilio applied the update, False when the call had already ended."""
        try:
            await self._client.calls(call_sid).update_async(**fields)
        except TwilioRestException as exc:
            if exc.status == 404 or exc.code in CALL_ALREADY_ENDED_CODES:
                return False
            raise TwilioUnavailable(
                f"Twilio refused the call update ({exc.status}, code {exc.code}): {exc.msg}"
            ) from exc
        except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TwilioUnavailable(f"could not reach Twilio: {exc!r}") from exc
        return True

    async def fetch_recording(self, recording_url: str, *, extension: str = ".wav") -> bytes:
        """A recording's audio (`RecordingUrl` + extension), with the account's credentials as the SDK's
        client sends them; raises TwilioUnavailable."""
        username, password = self._client.auth
        url = self._http._rewrite(recording_url + extension)
        try:
            async with aiohttp.ClientSession() as session, session.get(
                url, headers={"Authorization": aiohttp.encode_basic_auth(username, password)},
                timeout=aiohttp.ClientTimeout(total=30), allow_redirects=True,
            ) as response:
                if response.status != 200:
                    raise TwilioUnavailable(f"Twilio answered {response.status} for the recording")
                return await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TwilioUnavailable(f"could not fetch the recording: {exc!r}") from exc

    async def hang_up(self, call_sid: str) -> bool:
        """End the call; an already-ended call is fine (returns False)."""
        ended = await self._update(call_sid, status="completed")
        log.info("twilio hang-up %s: %s", call_sid, "done" if ended else "call had already ended")
        return ended

    async def redirect(self, call_sid: str, twiml: str) -> bool:
        """Replace what the call is doing (this also ends its media stream); False if it had ended."""
        applied = await self._update(call_sid, twiml=twiml)
        log.info("twilio call update %s: %s", call_sid, "applied" if applied else "call had already ended")
        return applied

    # -- issue 16: placing calls --------------------------------------------------------------------------
    async def place_call(self, *, to: str, from_: str, status_callback: str, url: str | None = None,
                         twiml: str | None = None, amd_callback: str | None = None,
                         ring_seconds: int = 25) -> str:
        """`Calls.create` from one of the account's numbers; returns the new CallSid. With `amd_callback`,
        asynchronous answering-machine detection that waits for the end of a machine's greeting (the verdict
        is POSTed there while the call goes on). Raises TwilioRefused for a request Twilio will never accept
        (a bad or barred number: 4xx), TwilioUnavailable when it may work later."""
        fields: dict[str, Any] = {
            "to": to, "from_": from_, "status_callback": status_callback, "status_callback_method": "POST",
            "status_callback_event": ["initiated", "ringing", "answered", "completed"], "timeout": ring_seconds,
        }
        if url is not None:
            fields["url"], fields["method"] = url, "POST"
        if twiml is not None:
            fields["twiml"] = twiml
        if amd_callback is not None:
            fields.update(machine_detection="DetectMessageEnd", async_amd="true",
                          async_amd_status_callback=amd_callback, async_amd_status_callback_method="POST")
        try:
            call = await self._client.calls.create_async(**fields)
        except TwilioRestException as exc:
            if 400 <= exc.status < 500:
                raise TwilioRefused(exc.code, f"Twilio refused the call ({exc.status}, code {exc.code}): "
                                    f"{exc.msg}") from exc
            raise TwilioUnavailable(f"Twilio failed to place the call ({exc.status}, code {exc.code})") from exc
        except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TwilioUnavailable(f"could not reach Twilio: {exc!r}") from exc
        log.info("twilio call placed: %s", call.sid)
        return str(call.sid)


    # -- issue 16 item 6: what a call cost ------------------------------------------------------------------
    async def call_legs(self, call_sid: str) -> list[CallLeg]:
        """The call and the legs it spawned (`<Dial>`: `Calls.json?ParentCallSid=`), with Twilio's price of
        each (None until Twilio has rated it). Raises TwilioRefused when Twilio has no such call (4xx),
        TwilioUnavailable when it can't answer now."""
        try:
            call = await self._client.calls(call_sid).fetch_async()
            children = await self._client.calls.list_async(parent_call_sid=call_sid, page_size=100)
        except TwilioRestException as exc:
            if 400 <= exc.status < 500:
                raise TwilioRefused(exc.code, f"Twilio refused the call fetch ({exc.status}, code {exc.code})"
                                    ) from exc
            raise TwilioUnavailable(f"Twilio failed to fetch the call ({exc.status}, code {exc.code})") from exc
        except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TwilioUnavailable(f"could not reach Twilio: {exc!r}") from exc
        return [CallLeg(str(leg.sid), str(leg.status or ""), leg.price, leg.price_unit)
                for leg in (call, *children)]


@dataclass(frozen=True, slots=True)
class CallLeg:
    """One Twilio call as its bill sees it: `price` is Twilio's decimal string (negative), None until rated."""

    sid: str
    status: str
    price: str | None
    price_unit: str | None


class TwilioRefused(TwilioUnavailable):
    """Twilio answered 4xx to a request: retrying the same request will not help."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
