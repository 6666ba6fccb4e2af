"""OpenID Connect providers on 127.0.0.1 for sign-in tests.

- `mock_google(...)`: the real third-party provider `oidc-provider-mock` (0.3.4) in a thread, with nonce
  checking on. A person (or test) signs in by choosing a subject on its authorize page.
- `ScriptedProvider`: a small hand-written provider that signs id_tokens with claims a test chooses
  (wrong nonce, wrong audience, expired, unverified email, foreign signing key, wrong issuer). It checks
  the PKCE verifier against the challenge and the client secret, as Google does, so those are proven too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class MockGoogle:
    url: str

    @property
    def discovery_url(self) -> str:
        return self.url + "/.well-known/openid-configuration"


@contextmanager
def mock_google(users: dict[str, dict[str, Any]]) -> Iterator[MockGoogle]:
    """oidc-provider-mock on 127.0.0.1; `users` maps subject → claims (email, email_verified, name)."""
    from oidc_provider_mock import User
    from oidc_provider_mock._app import app as make_app
    from oidc_provider_mock._server import _threaded_server

    wsgi = make_app(require_nonce=True, user_claims=[User(sub=sub, claims=claims) for sub, claims in users.items()])
    # Its public helper binds "localhost"; the issuer is taken from the Host header, so bind the address
    # the app is configured with.
    with _threaded_server(app=wsgi, host="127.0.0.1", port=0) as server:
        yield MockGoogle(url=f"http://127.0.0.1:{server.server_port}")


@dataclass
class ScriptedProvider:
    client_id: str = "receptionist-test-client"
    client_secret: str = "receptionist-test-secret"
    subject: str = "scripted-subject-1"
    email: str = "scripted.owner@example.com"
    # Claims merged over the correct ones for the next id_token (e.g. {"aud": "someone-else"}).
    overrides: dict[str, Any] = field(default_factory=dict)
    sign_with_foreign_key: bool = False
    url: str = ""
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = RSAKey.generate_key(2048, parameters={"kid": "scripted-1", "use": "sig", "alg": "RS256"})
        self._foreign = RSAKey.generate_key(2048, parameters={"kid": "scripted-1", "use": "sig", "alg": "RS256"})
        self._codes: dict[str, dict[str, str]] = {}
        self._server: ThreadingHTTPServer | None = None

    @property
    def discovery_url(self) -> str:
        return self.url + "/.well-known/openid-configuration"

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url, "aud": self.client_id, "sub": self.subject, "email": self.email,
            "email_verified": True, "name": "Scripted Owner", "iat": now, "exp": now + 600, "nonce": nonce,
        }
        claims.update(self.overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self._foreign if self.sign_with_foreign_key else self._key
        return jwt.encode({"alg": "RS256", "kid": "scripted-1"}, claims, key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, {
                        "issuer": provider.url,
                        "authorization_endpoint": provider.url + "/authorize",
                        "token_endpoint": provider.url + "/token",
                        "jwks_uri": provider.url + "/jwks",
                        "response_types_supported": ["code"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "code_challenge_methods_supported": ["S256"],
                    })
                elif parts.path == "/jwks":
                    self._json(200, KeySet([provider._key]).as_dict(private=False))
                elif parts.path == "/authorize":
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    provider.authorize_requests.append(query)
                    code = secrets.token_urlsafe(16)
                    provider._codes[code] = query
                    location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                provider.token_requests.append(form)
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                if auth := self.headers.get("Authorization"):
                    client_id, client_secret = base64.b64decode(auth.split()[1]).decode().split(":", 1)
                request = provider._codes.pop(form.get("code", ""), None)
                error = None
                if client_id != provider.client_id or client_secret != provider.client_secret:
                    error = "invalid_client"
                elif request is None or form.get("redirect_uri") != request.get("redirect_uri"):
                    error = "invalid_grant"
                else:
                    verifier = form.get("code_verifier", "")
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                    if request.get("code_challenge_method") != "S256" or challenge.decode() != request.get(
                        "code_challenge"
                    ):
                        error = "invalid_grant"  # PKCE verifier does not match the challenge
                if error or request is None:
                    provider.token_errors.append(error or "invalid_grant")
                    self._json(400, {"error": error})
                    return
                self._json(200, {
                    "access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 3600,
                    "scope": request.get("scope", ""), "id_token": provider.id_token(request.get("nonce", "")),
                })

        return Handler

    def start(self) -> ScriptedProvider:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
