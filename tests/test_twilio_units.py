"""Signature checks, TwiML and the REST client, against the Twilio double's real algorithms and REST server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.db.engine import Database
from app.db.models import Call, Session
from app.main import create_app
from app.telephony import twiml
from app.telephony.rest import TwilioCalls, TwilioUnavailable
from app.telephony.signature import FormParams, public_url, signature_is_valid
from tests.conftest import make_settings
from tests.doubles.twilio_double import DoubleCall, TwilioDouble, parse_twiml
from tests.support.data import create_owner


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioDouble]:
    with TwilioDouble() as double:
        yield double


@pytest.fixture
def calls(twilio: TwilioDouble) -> TwilioCalls:
    twilio.reset()
    return TwilioCalls(twilio.account_sid, twilio.auth_token, twilio.api_base_url)


PARAMS = {"CallSid": "CA" + "1" * 32, "From": "+15551230000", "To": "+15559870000", "AccountSid": "AC" + "2" * 32}


def test_signature_made_by_twilios_algorithm_is_accepted(twilio: TwilioDouble) -> None:
    url = public_url("https://rx.example.com", "/twilio/voice")
    headers = {"X-Twilio-Signature": twilio.sign(url, PARAMS)}
    assert signature_is_valid(twilio.auth_token, url, FormParams(list(PARAMS.items())), headers)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p, u, h: (p | {"To": "+15550000000"}, u, h), "a tampered parameter"),
        (lambda p, u, h: (p, u.replace("https://rx", "https://other"), h), "another host"),
        (lambda p, u, h: (p, u, {}), "no signature"),
        (lambda p, u, h: (p, u, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}), "a made-up signature"),
    ],
)
def test_signature_refusals(twilio: TwilioDouble, change, why: str) -> None:  # type: ignore[no-untyped-def]
    url = public_url("https://rx.example.com", "/twilio/voice")
    headers = {"X-Twilio-Signature": twilio.sign(url, PARAMS)}
    params, url, headers = change(dict(PARAMS), url, headers)
    assert not signature_is_valid(twilio.auth_token, url, FormParams(list(params.items())), headers), why


def test_signature_with_another_token_is_refused(twilio: TwilioDouble) -> None:
    url = public_url("https://rx.example.com", "/twilio/status")
    headers = {"X-Twilio-Signature": twilio.sign(url, PARAMS)}
    assert not signature_is_valid("a-different-auth-token", url, FormParams(list(PARAMS.items())), headers)


def test_repeated_form_fields_are_all_signed(twilio: TwilioDouble) -> None:
    pairs = [("Digits", "1"), ("Digits", "2"), ("CallSid", "CA1")]
    url = "https://rx.example.com/twilio/status"
    form = FormParams(pairs)
    headers = {"X-Twilio-Signature": twilio.validator.compute_signature(url, form)}
    assert signature_is_valid(twilio.auth_token, url, form, headers)
    assert not signature_is_valid(twilio.auth_token, url, FormParams(pairs[1:]), headers)


def test_connect_stream_twiml_carries_the_token_as_a_parameter() -> None:
    url = twiml.stream_url("wss://rx.example.com")
    body = twiml.connect_stream(url, "tok.en&<x>")
    answer = parse_twiml(200, body)
    assert answer.stream_url == "wss://rx.example.com/twilio/media"
    assert answer.parameters == {"session": "tok.en&<x>"}
    # If the stream is lost, the caller hears why before Twilio ends the call.
    assert answer.after_stream == [twiml.CUT_OFF_APOLOGY] and answer.hangup


def test_apology_and_dial_twiml() -> None:
    apology = parse_twiml(200, twiml.say_and_hang_up(twiml.UNKNOWN_NUMBER_APOLOGY))
    assert apology.says == [twiml.UNKNOWN_NUMBER_APOLOGY] and apology.hangup and apology.stream_url is None
    assert parse_twiml(200, twiml.dial("+15557654321")).dial == "+15557654321"


async def test_hang_up_goes_through_the_sdk_to_the_configured_origin(
    twilio: TwilioDouble, calls: TwilioCalls
) -> None:
    call = DoubleCall(sid="CA" + "3" * 32, from_="+15551230000", to="+15559870000", status="in-progress")
    twilio.calls[call.sid] = call
    assert await calls.hang_up(call.sid) is True
    [request] = twilio.hang_ups(call.sid)
    assert request.status_code == 200 and request.form == {"Status": "completed"}
    assert call.status == "completed" and call.ended_by == "rest-hangup"
    # Hanging up a call that is gone is not an error.
    assert await calls.hang_up("CA" + "9" * 32) is False


async def test_transfer_updates_the_call_with_dial_twiml(twilio: TwilioDouble, calls: TwilioCalls) -> None:
    call = DoubleCall(sid="CA" + "4" * 32, from_="+15551230000", to="+15559870000", status="in-progress")
    twilio.calls[call.sid] = call
    assert await calls.redirect(call.sid, twiml.dial("+15557654321")) is True
    assert call.dialed == "+15557654321"
    assert "<Dial" in twilio.updates(call.sid)[0].form["Twiml"]
    twilio._end(call, "completed", "caller")
    assert await calls.redirect(call.sid, twiml.dial("+15557654321")) is False  # 21220: no longer in progress


async def test_rest_errors_become_twilio_unavailable(twilio: TwilioDouble, calls: TwilioCalls) -> None:
    twilio.rest_failures.append(500)
    with pytest.raises(TwilioUnavailable, match="500"):
        await calls.hang_up("CA" + "5" * 32)
    wrong = TwilioCalls(twilio.account_sid, "not-the-token", twilio.api_base_url)
    with pytest.raises(TwilioUnavailable, match="401"):
        await wrong.hang_up("CA" + "5" * 32)
    nowhere = TwilioCalls(twilio.account_sid, twilio.auth_token, "http://127.0.0.1:9")
    with pytest.raises(TwilioUnavailable, match="could not reach"):
        await nowhere.hang_up("CA" + "5" * 32)


# -- the webhook in-process, for configurations the end-to-end server doesn't have ----------------------------------
async def _post_signed(client: AsyncTestClient[Litestar], token: str, path: str, params: dict[str, str]) -> Any:
    url = "http://localhost:8000" + path  # PUBLIC_BASE_URL's default: what Twilio would have signed
    signature = RequestValidator(token).compute_signature(url, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def test_webhooks_are_refused_when_twilio_is_not_configured(data_dir: Path, db: Database) -> None:
    app = create_app(make_settings(data_dir))
    async with AsyncTestClient(app) as client:
        response = await client.post("/twilio/voice", data=PARAMS)
    assert response.status_code == 503 and "not configured" in response.json()["error"]


async def test_without_openai_the_caller_gets_the_fallback_and_the_session_fails(data_dir: Path, db: Database) -> None:
    token = "twilio-auth-token-for-tests"
    settings = make_settings(data_dir, TWILIO_ACCOUNT_SID="AC" + "7" * 32, TWILIO_AUTH_TOKEN=token)
    _user, business = await create_owner(db, phone_number="+15559870000")
    async with AsyncTestClient(create_app(settings)) as client:
        missing = await _post_signed(client, token, "/twilio/voice", {"From": "+15551230000"})
        response = await _post_signed(client, token, "/twilio/voice", PARAMS)
    assert missing.status_code == 400 and "CallSid" in missing.json()["error"]
    answer = parse_twiml(response.status_code, response.text)
    # Known up front: the webhook's answer is the fallback itself (no transfer number here: a voicemail).
    assert answer.record is not None and answer.stream_url is None and answer.dial is None
    assert answer.record["recordingStatusCallback"].endswith("/twilio/voicemail/recording")
    assert response.headers["content-type"].startswith("text/xml")
    async with db.session() as s:
        session = await s.scalar(select(Session).where(Session.twilio_call_sid == PARAMS["CallSid"]))
    assert session is not None and session.business_id == business.id and session.status == "failed"
    assert session.failure_reason and "OPENAI_API_KEY" in session.failure_reason


async def test_at_the_plans_limit_without_a_transfer_number_the_caller_gets_voicemail(data_dir: Path,
                                                                                      db: Database) -> None:
    token = "twilio-auth-token-for-tests"
    settings = make_settings(data_dir, TWILIO_ACCOUNT_SID="AC" + "7" * 32, TWILIO_AUTH_TOKEN=token,
                             FREE_TRIAL_MINUTES="0")  # the trial is used up before the first call
    _user, business = await create_owner(db, phone_number="+15559870000")
    async with AsyncTestClient(create_app(settings)) as client:
        response = await _post_signed(client, token, "/twilio/voice", PARAMS)
        again = await _post_signed(client, token, "/twilio/voice", PARAMS)  # Twilio retries: recorded once
    for answer in (parse_twiml(response.status_code, response.text), parse_twiml(again.status_code, again.text)):
        assert answer.record is not None and answer.stream_url is None and answer.dial is None
    async with db.session() as s:
        calls = list(await s.scalars(select(Call).where(Call.business_id == business.id)))
    assert [(c.status, c.end_reason, c.billable_seconds) for c in calls] == [
        ("abandoned", "limit_reached_voicemail", 0.0)]
