"""Billing end to end: the real service (granian subprocess) with the Polar, Twilio and OpenAI doubles, each
reached only through configuration. An owner upgrades through Polar's checkout, Polar's signed webhook makes
the plan active, a phone call uses the plan's minutes and reaches Polar's meter, crossing the limit warns the
owner (on the billing page, and by email at the real SMTP double, once), and on a stop-at-limit plan the next
call is forwarded to the owner's number instead of the AI."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from app.db.engine import Database
from app.settings import load_settings
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.polar_double import PolarDouble
from tests.doubles.smtp_server import SmtpServer, body_of
from tests.doubles.twilio_double import TwilioDouble, caller_audio
from tests.support.billing import STARTER, polar_double, polar_env
from tests.support.data import create_owner
from tests.support.phone_world import PhoneWorld, phone_service
from tests.support.waiting import wait_until
from tests.test_twilio_calls import finalised, hear_it_all, sent_at

NUMBER = "+15550003000"
TRANSFER = "+12125550111"  # a number the transfer rules accept (a 555 area code is not a real one)
# One included minute, per started minute: a single answered call reaches the limit.
E2E_PLANS = [{"key": "starter", "name": "Starter", "product_id": STARTER, "included_minutes": 1,
              "over_limit": "stop"}]


@dataclass
class World(PhoneWorld):
    polar: PolarDouble
    owner_id: UUID
    business_id: UUID
    smtp: SmtpServer
    owner_email: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("billing-e2e")
    with (OpenAIDouble(api_key="test-key") as openai, TwilioDouble() as twilio, polar_double() as polar,
          SmtpServer() as smtp):
        with phone_service(data_dir, openai, twilio, "billing-server.log", SMTP_URL=smtp.url,
                           SMTP_FROM="receptionist@service.example",
                           **polar_env(polar, POLAR_PLANS=json.dumps(E2E_PLANS))) as server:

            async def seed() -> tuple[UUID, UUID, str]:
                db = Database(load_settings(server.env))
                try:
                    user, business = await create_owner(db, phone_number=NUMBER, transfer_number=TRANSFER)
                    return user.id, business.id, user.email
                finally:
                    await db.dispose()

            owner_id, business_id, email = asyncio.run(seed())
            yield World(server, openai, twilio, server.env, polar, owner_id, business_id, smtp, email)


async def csrf(client: httpx.AsyncClient) -> str:
    page = (await client.get("/billing")).text
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match
    return match.group(1)


async def test_upgrade_use_minutes_warn_and_forward_at_the_limit(world: World) -> None:
    w = world
    async with w.client_for(w.owner_id) as owner:
        # 1. The owner upgrades: a Polar checkout for the Starter product, for this owner.
        response = await owner.post("/billing/checkout", data={"plan": "starter"},
                                    headers={"x-csrftoken": await csrf(owner)})
        assert response.status_code == 303
        checkout = w.polar.checkouts[-1]
        assert response.headers["location"] == checkout["response"]["url"]
        assert checkout["request"]["products"] == [STARTER]
        assert checkout["request"]["external_customer_id"] == str(w.owner_id)

        # 2. The owner pays on Polar; Polar's signed webhook makes the plan active.
        sub = w.polar.complete_checkout()
        url = w.server.url + "/billing/polar/webhook"
        delivered = await asyncio.to_thread(w.polar.deliver, url, "subscription.active",
                                            w.polar.subscription_object(sub))
        assert delivered.status_code == 200, delivered.text
        page = (await owner.get("/billing")).text
        assert '<span class="plan" id="plan-name">Starter</span>' in page
        assert '<strong id="minutes-used">0.0</strong> of <span id="minutes-included">1</span>' in page

        # 3. A phone call answered by the AI uses the plan's minutes, and its usage reaches Polar.
        w.openai.realtime.say("Hello, how can I help?")
        w.openai.realtime.caller("Are you open on Saturday?")
        w.openai.realtime.say("Yes, from ten to two.")
        sessions_before = len(w.openai.realtime_sessions)
        call, answer = await w.twilio.place_call(w.server.url + "/twilio/voice", to=NUMBER, from_="+15553334444")
        assert answer.stream_url, answer.body
        stream = await w.twilio.open_stream(call, answer)
        log = await asyncio.to_thread(w.openai.wait_for_session, sessions_before, 5.0)
        await sent_at(log, "response.done")
        await stream.speak(caller_audio("book"))
        await sent_at(log, "response.done", count=2, timeout=15)
        await hear_it_all(stream, log)
        await stream.hang_up()
        _session, row, _events = await finalised(w, call.sid)  # type: ignore[arg-type]
        assert row.billable_seconds > 0 and "Caller:" in row.transcript

        await wait_until(lambda: str(row.id) in w.polar.events, timeout=15)
        event = w.polar.events[str(row.id)]
        assert event["external_customer_id"] == str(w.owner_id) and event["metadata"]["minutes"] == 1

        # 4. Crossing the limit warns the owner on the billing page and by email (the owner's default channel).
        # The call went from 0 % to 100 % at once: both thresholds are recorded, only the 100 % one is sent.
        async def warned() -> bool:
            return 'id="usage-warning-100"' in (await owner.get("/billing")).text

        await wait_until(warned, timeout=15)

        def warning_mails() -> list[str]:
            return [body_of(m) for m in w.smtp.to(w.owner_email) if "included minutes" in str(m["Subject"])]

        await wait_until(lambda: len(warning_mails()) == 1, timeout=20)
        mail = warning_mails()[0]
        assert "All 1 included minutes of your Starter plan are used" in mail
        assert f"From now on calls are forwarded to your transfer number {TRANSFER}" in mail
        assert f"{w.server.url}/billing" in mail
        page = (await owner.get("/billing")).text
        assert 'id="usage-warning-80"' in page and "forwarded to your transfer number" in page
        assert "Not sent separately: the 100 % warning went out at the same time." in page
        assert '<strong id="minutes-used">1.0</strong>' in page and 'aria-valuenow="100"' in page
        assert 'data-event="usage_warning" data-status="sent"' in page  # the warning's delivery state

        # 5. On this stop-at-limit plan the next call is forwarded to the owner instead of the AI.
        sessions = len(w.openai.realtime_sessions)
        second, answer = await w.twilio.place_call(w.server.url + "/twilio/voice", to=NUMBER, from_="+15556667777")
        assert answer.status_code == 200 and answer.stream_url is None and answer.dial == TRANSFER, answer.body
        assert len(w.openai.realtime_sessions) == sessions
        _session, forwarded, _events = await finalised(w, second.sid)  # type: ignore[arg-type]
        assert forwarded.status == "transferred" and forwarded.end_reason == "limit_reached_forwarded"
        assert forwarded.billable_seconds == 0
        page = (await owner.get("/billing")).text
        assert 'id="forwarded">1 call' in page

        # 6. The warning went out once, and the owner's list of sent notifications shows it with its state.
        outbox = (await owner.get("/notifications")).text
        assert outbox.count('data-event="usage_warning" data-status="sent"') == 1
        assert "Minutes warning (100 %) by email" in outbox
        assert len(warning_mails()) == 1
