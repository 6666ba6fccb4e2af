"""What the end-to-end phone test modules share: the running service (granian) with the OpenAI and Twilio
doubles it is configured for, owners signed in as httpx clients, and the server's log, kept and checked when
the module's server stops.

A module subclasses `PhoneWorld` with what it seeded (its businesses and owners, its other doubles).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx

from app.auth.cookies import COOKIE_NAME, SessionSigner
from app.db.engine import Database
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.smtp_server import SmtpServer
from tests.doubles.twilio_double import TwilioDouble
from tests.support.server import ROOT, RunningServer, phone_env, run_server

ARTIFACTS = ROOT / "test-artifacts"


def owner_client(env: dict[str, str], owner_id: UUID, base_url: str = "", timeout: float = 20.0) -> httpx.AsyncClient:
    """An httpx client signed in as the owner (the service's own session cookie, signed with its secret)."""
    signer = SessionSigner((env["SESSION_SECRETS"],))
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, cookies={COOKIE_NAME: signer.sign(owner_id)})


def check_log(log: str, artifact: str | None = None) -> None:
    """The service's log at the end of a module: kept under test-artifacts/ when named, and free of tracebacks."""
    if artifact is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / artifact).write_text(log)
    assert "Traceback" not in log, log[-5000:]


@contextmanager
def phone_service(data_dir: Path, openai: OpenAIDouble, twilio: TwilioDouble, artifact: str,
                  **env: str) -> Iterator[RunningServer]:
    """The service configured for the doubles (and `env`), Twilio's status callbacks pointed at it; when it stops
    its log is kept as test-artifacts/`artifact` and checked."""
    with run_server(phone_env(data_dir, openai, twilio, **env)) as server:
        twilio.status_callback_url = server.url + "/twilio/status"
        yield server
        check_log(server.log(), artifact)


@dataclass
class PhoneWorld:
    server: RunningServer
    openai: OpenAIDouble
    twilio: TwilioDouble
    env: dict[str, str]

    @property
    def voice_url(self) -> str:
        return self.server.url + "/twilio/voice"

    @property
    def status_url(self) -> str:
        return self.server.url + "/twilio/status"

    def database(self) -> Database:
        return Database(load_settings(self.env))

    def client_for(self, owner_id: UUID, timeout: float = 20.0) -> httpx.AsyncClient:
        return owner_client(self.env, owner_id, self.server.url, timeout)


@dataclass
class InboxWorld(PhoneWorld):
    """One business and its owner, whose notifications go to a real SMTP server (and the Twilio double)."""

    smtp: SmtpServer
    business_id: UUID
    owner_id: UUID

    def owner_client(self) -> httpx.AsyncClient:
        return self.client_for(self.owner_id)
