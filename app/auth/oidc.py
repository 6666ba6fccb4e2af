"""Google OpenID Connect: authorization code flow with PKCE (S256), `state` and `nonce`.

The discovery document and JWKS come from `GOOGLE_DISCOVERY_URL`, so the same code signs in against a
local provider in tests. The id_token is verified here (signature against the provider's JWKS, issuer,
audience, expiry, nonce, `email_verified`) rather than trusted because it came over TLS: a token endpoint
answer is only as good as the checks made on it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from app.settings import Settings

log = logging.getLogger(__name__)

SCOPES = "openid email profile"
FLOW_MAX_AGE_SECONDS = 600
FLOW_COOKIE_NAME = "receptionist_oidc_flow"
_FLOW_SALT = "oidc-flow"  # distinct from the session cookie's salt: one can never stand in for the other
_METADATA_TTL_SECONDS = 3600
_CLOCK_LEEWAY_SECONDS = 30
_HTTP_TIMEOUT_SECONDS = 10.0
# Google documents both spellings of its issuer.
_GOOGLE_ISSUERS = {"https://accounts.google.com", "accounts.google.com"}


class SignInError(Exception):
    """The sign-in could not be completed; the message is safe to show the person signing in."""


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class FlowState:
    """What the callback needs to finish the flow; kept in a short-lived signed cookie, never server-side."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


class FlowCookie:
    def __init__(self, secrets_: tuple[str, ...]) -> None:
        self._serializer = URLSafeTimedSerializer(list(reversed(secrets_)), salt=_FLOW_SALT)

    def dump(self, flow: FlowState) -> str:
        return self._serializer.dumps(
            {"s": flow.state, "n": flow.nonce, "v": flow.code_verifier, "x": flow.next_path}
        )

    def load(self, value: str) -> FlowState | None:
        try:
            raw = self._serializer.loads(value, max_age=FLOW_MAX_AGE_SECONDS)
            return FlowState(state=raw["s"], nonce=raw["n"], code_verifier=raw["v"], next_path=raw["x"])
        except (BadSignature, KeyError, TypeError):
            return None


class GoogleOIDC:
    """One per process; caches the discovery document and JWKS (refetched when a key id is unknown)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.google_client_id or not settings.google_client_secret:
            raise ValueError("Google sign-in needs GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET")
        self.client_id = settings.google_client_id
        self._client_secret = settings.google_client_secret
        self._discovery_url = settings.google_discovery_url
        self.redirect_uri = settings.public_base_url + "/auth/callback"
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=SCOPES,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=_HTTP_TIMEOUT_SECONDS,
        )

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > _METADATA_TTL_SECONDS:
                async with self._client() as client:
                    try:
                        response = await client.request("GET", self._discovery_url, withhold_token=True)
                        response.raise_for_status()
                        document = response.json()
                    except Exception as exc:
                        log.warning("OIDC discovery failed: %r", exc)
                        raise SignInError("the sign-in provider could not be reached; try again") from exc
                for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(document.get(key), str):
                        raise SignInError(f"the sign-in provider's discovery document has no {key}")
                self._metadata, self._metadata_at, self._jwks = document, time.monotonic(), None
            return self._metadata

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        if self._jwks is None or refresh:
            async with self._client() as client:
                try:
                    response = await client.request("GET", metadata["jwks_uri"], withhold_token=True)
                    response.raise_for_status()
                    self._jwks = KeySet.import_key_set(response.json())
                except Exception as exc:
                    log.warning("OIDC JWKS fetch failed: %r", exc)
                    raise SignInError("the sign-in provider's keys could not be loaded") from exc
        return self._jwks

    async def begin(self, next_path: str) -> tuple[str, FlowState]:
        """The provider URL to send the browser to, and the flow state to keep in the flow cookie."""
        metadata = await self.metadata()
        flow = FlowState(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=generate_token(64),
            next_path=next_path,
        )
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=flow.state,
                code_verifier=flow.code_verifier,
                nonce=flow.nonce,
            )
        return url, flow

    async def finish(self, code: str, flow: FlowState) -> Identity:
        metadata = await self.metadata()
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"],
                    code=code,
                    code_verifier=flow.code_verifier,
                    redirect_uri=self.redirect_uri,
                )
            except Exception as exc:
                log.warning("OIDC token exchange failed: %r", exc)
                raise SignInError("the sign-in provider refused the sign-in code") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("the sign-in provider sent no id_token")
        claims = await self.verify_id_token(id_token, nonce=flow.nonce)
        return Identity(
            subject=str(claims["sub"]),
            email=str(claims["email"]).strip().lower(),
            name=str(claims.get("name") or ""),
        )

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        metadata = await self.metadata()
        key_set = await self._key_set()
        try:
            try:
                token = jwt.decode(id_token, key_set, algorithms=["RS256", "ES256"])
            except JoseError:
                # The provider may have rotated its signing key since we cached the JWKS.
                token = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=["RS256", "ES256"])
        except (JoseError, ValueError) as exc:
            raise SignInError("the sign-in token's signature is not valid") from exc

        issuers = {metadata["issuer"]}
        if metadata["issuer"] in _GOOGLE_ISSUERS:
            issuers |= _GOOGLE_ISSUERS
        registry = jwt.JWTClaimsRegistry(
            leeway=_CLOCK_LEEWAY_SECONDS,
            iss={"essential": True, "values": sorted(issuers)},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
            email={"essential": True},
        )
        claims = token.claims
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise SignInError(f"the sign-in token was refused ({exc.error}: {exc.description})") from exc
        # A multi-audience token must name us as its authorised party.
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and claims.get("azp") != self.client_id:
            raise SignInError("the sign-in token was issued to another application")
        if claims.get("email_verified") not in (True, "true"):
            raise SignInError("your Google account's email address is not verified")
        return claims
