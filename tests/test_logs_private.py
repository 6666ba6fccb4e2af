"""No personal data or secret in the server's log: a whole phone call (Twilio double + OpenAI double, the
real service in a subprocess, DEBUG logging) leaves no caller number, transcript sentence, token or key in
any log line; and the redacting formatter masks what third-party code might log."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from datetime import date, timedelta
from uuid import UUID

import pytest
from sqlalchemy import select

from app.db.engine import Database
from app.db.models import Call, Session
from app.settings import load_settings
from app.web.logs import FORMAT, RedactingFormatter
from tests.doubles.openai_double import OpenAIDouble
from tests.doubles.twilio_double import TwilioDouble, caller_audio
from tests.support.data import seed_owner
from tests.support.server import RunningServer, phone_env, run_server

SALON = "+15550001000"
CALLER = "+15553334444"
SAID_BY_CALLER = "I'd like to book a haircut tomorrow at ten in the morning"
SAID_BY_AGENT = "You're booked for a haircut at ten"


def _weekday_after(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture(scope="module")
def call_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("private-logs")
    with OpenAIDouble(api_key="sk-test-key-that-must-not-be-logged") as openai, TwilioDouble() as twilio:
        env = phone_env(data_dir, openai, twilio, LOG_LEVEL="DEBUG")
        with run_server(env) as server:
            env = server.env

            asyncio.run(seed_owner(env, name="Sam's Salon", phone_number=SALON,
                                   greeting="Thanks for calling Sam's Salon."))
            start = f"{_weekday_after(date.today()).isoformat()}T10:00"
            openai.realtime.say("Thanks for calling Sam's Salon.")
            openai.realtime.caller(SAID_BY_CALLER + ".")
            openai.realtime.tool("getNextResponseFromSupervisor",
                                 {"relevantContextFromLastUserMessage": "book a haircut tomorrow at 10am"},
                                 say_first="One moment.")
            openai.realtime.say_from_tool_output()
            openai.realtime.caller("That's all, thank you. Goodbye.")
            openai.realtime.tool("end_call", {}, say_first="Goodbye!")
            openai.responses.for_model("gpt-4.1").function_call(
                "book_appointment", {"service": "Haircut", "start": start, "customer_name": "Ann Lee"}
            ).text(SAID_BY_AGENT + ".")

            async def run_call() -> str:
                call, answer = await twilio.place_call(server.url + "/twilio/voice", to=SALON, from_=CALLER)
                assert answer.status_code == 200
                stream = await twilio.open_stream(call, answer)
                log = await asyncio.to_thread(openai.wait_for_session, 0, 5.0)
                await asyncio.to_thread(log.wait_for_sent, "response.done", 10.0, 1)
                await stream.speak(caller_audio("book"))
                await asyncio.to_thread(log.wait_for_sent, "response.done", 15.0, 3)
                await stream.speak(caller_audio("bye"))
                await asyncio.wait_for(stream.closed.wait(), 20)
                db = Database(load_settings(env))
                try:
                    for _ in range(200):
                        async with db.session() as s:
                            row = await s.scalar(select(Call).join(Session, Session.id == Call.session_id)
                                                 .where(Session.twilio_call_sid == call.sid))
                        if row is not None and row.ended_at is not None:
                            break
                        await asyncio.sleep(0.05)
                    assert row is not None and row.ended_at is not None
                    # The call really carried the number and the words that must stay out of the log.
                    assert row.caller_phone == CALLER and SAID_BY_CALLER in row.transcript
                    assert SAID_BY_AGENT in row.transcript
                    return str(row.id)
                finally:
                    await db.dispose()

            call_id = asyncio.run(run_call())
            yield server, call_id, env


def test_a_whole_call_logs_no_number_no_words_no_secret(call_run: tuple[RunningServer, str, dict[str, str]]) -> None:
    server, _call_id, env = call_run
    # The log really covers the call (so the checks below are not run on an empty file). Its "ended" line is
    # written just after the record is finalised, so it may trail the fixture's look at the database.
    deadline = time.monotonic() + 15
    while "ended: goodbye (completed)" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log()
    lines = log.splitlines()
    assert any("session" in line and "offered" in line for line in lines)
    assert any("ended: goodbye (completed)" in line for line in lines)
    digits = CALLER.lstrip("+")
    for line in lines:
        assert digits not in line and digits[1:] not in line, line
        assert SALON.lstrip("+") not in line, line
        for sentence in (SAID_BY_CALLER, SAID_BY_AGENT, "book a haircut", "That's all, thank you", "Ann Lee"):
            assert sentence.lower() not in line.lower(), line
        for secret in (env["OPENAI_API_KEY"], env["TWILIO_AUTH_TOKEN"], env["SESSION_SECRETS"]):
            assert secret not in line, line
    # Query strings never reach the access log (the browser call's token travels in one).
    assert not re.search(r"\?\S*token=", log)


def test_the_formatter_masks_numbers_secrets_and_tokens() -> None:
    formatter = RedactingFormatter(FORMAT, secrets=["sk-live-0123456789"])
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1,
        "dial %s failed for %s; key %s; GET /ws/calls/1?token=abc.def&x=1; Authorization: Bearer abcdefghijkl",
        ("+44 20 7946 0958", "+15553334444", "sk-live-0123456789"), None,
    )
    record.request_id = "-"
    text = formatter.format(record)
    assert "7946" not in text and "5553334444" not in text and "sk-live" not in text
    assert "abc.def" not in text and "abcdefghijkl" not in text
    assert text.count("[phone]") == 2 and "token=[hidden]" in text and "[secret]" in text
    # Times, durations, ids and addresses survive.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "call %s ended after 95.0 s from 203.0.113.9 at %s",
                               (str(UUID(int=7)), "2026-12-01 11:33:05"), None)
    record.request_id = "-"
    text = formatter.format(record)
    assert str(UUID(int=7)) in text and "203.0.113.9" in text and "2026-12-01 11:33:05" in text and "95.0 s" in text
