"""Google Calendar API v3 and its OAuth 2.0 grant, through maintained clients.

- The grant: authorization code with PKCE (S256) through authlib's `AsyncOAuth2Client`, as sign-in does, with
  incremental consent (`include_granted_scopes=true`) for the calendar scopes only, offline access for a
  refresh token, and the token/revoke endpoints from settings.
- The API: aiogoogle's `GoogleAPI` built from the calendar v3 discovery document shipped beside this module
  (aiogoogle would download it at run time), its `rootUrl` replaced by GOOGLE_API_BASE_URL. Access tokens are
  refreshed here with authlib and kept in memory only; aiogoogle gets a token that is not about to expire.

Errors become three kinds the sync code acts on: `SyncTokenGone` (410: full resync), `GoogleNotFound`
(404/410 on one event), and `GoogleUnavailable` (anything else: the job queue retries later).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiogoogle import Aiogoogle
from aiogoogle.auth.creds import ClientCreds, UserCreds
from aiogoogle.excs import HTTPError
from aiogoogle.models import Request
from aiogoogle.resource import GoogleAPI
from authlib.integrations.httpx_client import AsyncOAuth2Client

from app.settings import Settings

log = logging.getLogger(__name__)

DISCOVERY_DOCUMENT = Path(__file__).with_name("calendar-v3.json")
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"
# calendarList.list is not covered by calendar.events; this is its narrowest scope (read the list only).
SCOPE_CALENDAR_LIST = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
SCOPES = (SCOPE_EVENTS, SCOPE_FREEBUSY, SCOPE_CALENDAR_LIST)
_HTTP_TIMEOUT_SECONDS = 15
_EXPIRY_MARGIN = 120  # seconds: refresh an access token this long before Google says it expires


class GoogleError(Exception):
    pass


class GoogleUnavailable(GoogleError):
    """Google could not be reached or answered with a server error; try again later."""


class GoogleNotFound(GoogleError):
    pass


class SyncTokenGone(GoogleError):
    """410 on an incremental list: the sync token is no longer valid, a full sync is required."""


class GrantRevoked(GoogleError):
    """The refresh token was refused (revoked in Google, or expired): the owner has to connect again."""


class GoogleRefused(GoogleError):
    """A 4xx the caller can't retry its way out of (bad request, no permission)."""


@dataclass(frozen=True, slots=True)
class Grant:
    access_token: str
    refresh_token: str | None
    expires_at: float  # time.time()
    scopes: frozenset[str]


def load_api(settings: Settings) -> GoogleAPI:
    document = json.loads(DISCOVERY_DOCUMENT.read_text())
    document["rootUrl"] = settings.google_api_base_url.rstrip("/") + "/"
    document["baseUrl"] = document["rootUrl"] + document["servicePath"]
    return GoogleAPI(document)


class GoogleCalendar:
    """One per process. `call` runs one API request with an account's refresh token."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.api = load_api(settings)
        self.redirect_uri = settings.public_base_url + "/settings/calendar/callback"
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def configured(self) -> bool:
        return bool(self._settings.google_client_id and self._settings.google_client_secret)

    def _oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self._settings.google_client_id,
            client_secret=self._settings.google_client_secret,
            scope=" ".join(SCOPES),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=_HTTP_TIMEOUT_SECONDS,
        )

    # -- the grant ---------------------------------------------------------------------------------------
    async def authorization_url(self, state: str, code_verifier: str, login_hint: str | None = None) -> str:
        extra = {"login_hint": login_hint} if login_hint else {}
        async with self._oauth() as client:
            url, _ = client.create_authorization_url(
                self._settings.google_oauth_authorize_url,
                state=state,
                code_verifier=code_verifier,
                access_type="offline",
                include_granted_scopes="true",
                prompt="consent",
                **extra,
            )
        return url

    async def exchange(self, code: str, code_verifier: str) -> Grant:
        async with self._oauth() as client:
            try:
                token = await client.fetch_token(
                    self._settings.google_oauth_token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    redirect_uri=self.redirect_uri,
                )
            except Exception as exc:
                log.warning("calendar token exchange failed: %r", exc)
                raise GoogleRefused("Google refused the authorization code; try connecting again") from exc
        return _grant(token)

    async def refresh(self, refresh_token: str) -> Grant:
        async with self._oauth() as client:
            try:
                token = await client.refresh_token(self._settings.google_oauth_token_url, refresh_token=refresh_token)
            except Exception as exc:
                error = getattr(exc, "error", "")
                if error in {"invalid_grant", "unauthorized_client"}:
                    raise GrantRevoked("Google no longer accepts this calendar grant; connect again") from exc
                raise GoogleUnavailable(f"token refresh failed: {type(exc).__name__}") from exc
        return _grant(token)

    async def revoke(self, token: str) -> None:
        async with self._oauth() as client:
            try:
                response = await client.request(
                    "POST", self._settings.google_oauth_revoke_url, data={"token": token}, withhold_token=True
                )
            except Exception as exc:
                raise GoogleUnavailable("Google could not be reached to revoke the grant") from exc
        # 400 invalid_token: already revoked or expired, which is what the owner asked for.
        if response.status_code >= 500:
            raise GoogleUnavailable(f"revoke answered {response.status_code}")

    async def access_token(self, account_key: str, refresh_token: str) -> str:
        lock = self._locks.setdefault(account_key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(account_key)
            if cached and cached[1] - _EXPIRY_MARGIN > time.time():
                return cached[0]
            grant = await self.refresh(refresh_token)
            self._tokens[account_key] = (grant.access_token, grant.expires_at)
            return grant.access_token

    def remember(self, account_key: str, grant: Grant) -> None:
        self._tokens[account_key] = (grant.access_token, grant.expires_at)

    def forget(self, account_key: str) -> None:
        self._tokens.pop(account_key, None)

    # -- API calls ---------------------------------------------------------------------------------------
    async def call(self, account_key: str, refresh_token: str, request: Request) -> Any:
        for attempt in (1, 2):
            token = await self.access_token(account_key, refresh_token)
            creds = UserCreds(
                access_token=token,
                refresh_token=refresh_token,
                expires_at=(datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)).isoformat(),
            )
            try:
                async with Aiogoogle(
                    user_creds=creds,
                    client_creds=ClientCreds(
                        client_id=self._settings.google_client_id,
                        client_secret=self._settings.google_client_secret,
                        scopes=list(SCOPES),
                    ),
                ) as google:
                    return await google.as_user(request, timeout=_HTTP_TIMEOUT_SECONDS)
            except HTTPError as exc:
                status = exc.res.status_code if exc.res is not None else 0
                if status == 401 and attempt == 1:
                    self.forget(account_key)  # expired or revoked early: refresh once
                    continue
                if status == 410:
                    raise SyncTokenGone(str(exc)) from None
                if status == 404:
                    raise GoogleNotFound(str(exc)) from None
                if status in (400, 403, 409, 412) or (401 <= status < 500 and status != 429):
                    raise GoogleRefused(f"{status}: {_reason(exc)}") from None
                raise GoogleUnavailable(f"{status or 'no answer'}: {_reason(exc)}") from None
            except (OSError, TimeoutError) as exc:
                raise GoogleUnavailable(f"unreachable: {type(exc).__name__}") from None
            except Exception as exc:  # aiohttp's client errors and the like
                if "aiohttp" in type(exc).__module__:
                    raise GoogleUnavailable(f"unreachable: {type(exc).__name__}") from None
                raise
        raise GoogleUnavailable("unauthorised after refreshing the token")


def _reason(exc: HTTPError) -> str:
    body = exc.res.json if exc.res is not None else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:200]
    return ""


def _grant(token: dict[str, Any]) -> Grant:
    expires_in = float(token.get("expires_in") or 3600)
    return Grant(
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token"),
        expires_at=time.time() + expires_in,
        scopes=frozenset(str(token.get("scope") or "").split()),
    )
