"""The operator's `litestar receptionist …` commands, run as the operator runs them (a subprocess of the real
CLI) against a migrated database and the Twilio double: onboarding a business by email, listing businesses and
numbers, assigning only the account's numbers, releasing them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import migrate
from app.db.engine import Database
from app.db.models import AuditEntry, Business, User
from app.settings import load_settings
from tests.doubles.twilio_double import TwilioDouble
from tests.support.server import ROOT, base_env

PUBLIC = "https://receptionist.example.com"


@pytest.fixture
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        yield double


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    litestar = Path(sys.executable).parent / "litestar"
    return subprocess.run([str(litestar), "--app", "app.main:app", "receptionist", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


async def business_of(env: dict[str, str], email: str) -> Business | None:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            return await s.scalar(select(Business).join(User, User.id == Business.owner_id).where(User.email == email))
    finally:
        await db.dispose()


def test_operator_onboards_a_business_and_hands_out_only_account_numbers(tmp_path: Path,
                                                                         twilio: TwilioDouble) -> None:
    env = base_env(tmp_path, TWILIO_ACCOUNT_SID=twilio.account_sid, TWILIO_AUTH_TOKEN=twilio.auth_token,
                   TWILIO_API_BASE_URL=twilio.api_base_url, PUBLIC_BASE_URL=PUBLIC)
    migrate.upgrade(load_settings(env))
    number = twilio.numbers.own("+15550126001", "Main line")
    elsewhere = twilio.numbers.own_elsewhere("+15550126002")

    created = cli(env, "create-business", "--email", "robin@example.com", "--name", "Robin's Studio",
                  "--timezone", "Europe/London")
    assert created.returncode == 0, created.stderr
    assert "created business" in created.stdout
    again = cli(env, "create-business", "--email", "robin@example.com", "--name", "Another")
    assert again.returncode != 0 and "already owns a business" in again.stderr
    business = asyncio.run(business_of(env, "robin@example.com"))
    assert business is not None and (business.name, business.timezone) == ("Robin's Studio", "Europe/London")

    refused = cli(env, "assign", "--email", "robin@example.com", elsewhere.phone_number)
    assert refused.returncode != 0 and "not one of this service's Twilio numbers" in refused.stderr

    assigned = cli(env, "assign", "--email", "robin@example.com", "+1 555 012 6001")
    assert assigned.returncode == 0, assigned.stderr
    assert number.voice_url == PUBLIC + "/twilio/voice" and number.status_callback == PUBLIC + "/twilio/status"
    business = asyncio.run(business_of(env, "robin@example.com"))
    assert business is not None and business.phone_number_sid == number.sid

    cli(env, "create-business", "--email", "bo@example.com", "--name", "Bo's Barbers")
    taken = cli(env, "assign", "--email", "bo@example.com", number.sid)
    assert taken.returncode != 0 and "Another business already uses that number" in taken.stderr

    listed = cli(env, "businesses")
    assert listed.returncode == 0 and f"+15550126001 ({number.sid})" in listed.stdout and "no number" in listed.stdout
    numbers = cli(env, "numbers")
    assert numbers.returncode == 0 and f"{number.sid}  +15550126001  Robin's Studio  webhooks here" in numbers.stdout
    assert elsewhere.sid not in numbers.stdout

    released = cli(env, "release", "--email", "robin@example.com")
    assert released.returncode == 0 and "released +15550126001" in released.stdout
    assert number.voice_url == "" and number.status_callback == ""
    business = asyncio.run(business_of(env, "robin@example.com"))
    assert business is not None and business.phone_number is None
    assert asyncio.run(audit_actions(env, business.id)) == [
        ("business.created", "operator"), ("number.assigned", "operator"), ("number.released", "operator")]


async def audit_actions(env: dict[str, str], business_id: object) -> list[tuple[str, str]]:
    db = Database(load_settings(env))
    try:
        async with db.session() as s:
            rows = await s.scalars(select(AuditEntry).where(AuditEntry.business_id == business_id)
                                   .order_by(AuditEntry.created_at))
            return [(e.action, e.actor_kind) for e in rows]
    finally:
        await db.dispose()
