"""The Twilio double behaves like Twilio: the media stream's framing, pacing, marks, clear, stop; the phone-number
REST API's pages and errors."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from app.telephony.mulaw_recording import decode_ulaw
from tests.doubles.twilio_double import (
    DoubleCall,
    MediaStream,
    TwilioDouble,
    TwimlAnswer,
    caller_audio,
    read_ulaw_wav,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class FakeApp:
    """A minimal app side: keeps every frame with its arrival time and lets a test send frames back."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.connection: ServerConnection | None = None
        self.connected = asyncio.Event()

    async def handler(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.connected.set()
        async for raw in connection:
            self.frames.append((time.monotonic(), json.loads(raw)))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [f for _, f in self.frames if f.get("event") == event]

    async def send(self, message: dict[str, Any]) -> None:
        assert self.connection is not None
        await self.connection.send(json.dumps(message))


@pytest.fixture
async def app_and_stream() -> AsyncIterator[tuple[FakeApp, MediaStream]]:
    fake = FakeApp()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        double = TwilioDouble()
        call = DoubleCall(sid="CA" + "a" * 32, from_="+15551230000", to="+15559870000", status="in-progress")
        double.calls[call.sid] = call
        answer = TwimlAnswer(200, "", stream_url=f"ws://127.0.0.1:{port}/twilio/media",
                             parameters={"session": "tok"})
        stream = await double.open_stream(call, answer)
        await fake.connected.wait()
        yield fake, stream
        await stream.close()


def test_asset_is_mu_law_speech() -> None:
    audio = caller_audio("book")
    assert len(audio) > 8000 * 3  # several seconds at 8 kHz
    samples = decode_ulaw(audio).astype(np.float64)
    assert np.sqrt(np.mean(samples[:2000] ** 2)) < 50  # the leading 0.3 s is silence
    assert np.sqrt(np.mean(samples[4000:16000] ** 2)) > 1000  # then speech
    with pytest.raises(ValueError, match="RIFF"):
        read_ulaw_wav(__file__)


async def test_handshake_and_paced_media_frames(app_and_stream: tuple[FakeApp, MediaStream]) -> None:
    fake, stream = app_and_stream
    speech = caller_audio("hours")[:1600]  # 200 ms
    await asyncio.wait_for(stream.speak(speech), 2)
    await asyncio.sleep(0.1)
    connected, start = fake.frames[0][1], fake.frames[1][1]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["start"]["callSid"] == stream.call.sid
    assert start["start"]["customParameters"] == {"session": "tok"}
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = [(t, f) for t, f in fake.frames if f["event"] == "media"]
    assert len(media) >= 10
    assert [f["media"]["chunk"] for _, f in media[:3]] == ["1", "2", "3"]
    assert [f["media"]["timestamp"] for _, f in media[:3]] == ["0", "20", "40"]
    assert [f["sequenceNumber"] for _, f in media[:2]] == ["2", "3"]
    sent = b"".join(base64.b64decode(f["media"]["payload"]) for _, f in media)
    assert sent.find(speech) % 160 == 0 and all(len(base64.b64decode(f["media"]["payload"])) == 160 for _, f in media)
    # Paced in real time, not bursted: ten frames span about 180 ms.
    span = media[9][0] - media[0][0]
    assert 0.15 < span < 0.3


async def test_marks_come_back_when_the_audio_before_them_has_played(
    app_and_stream: tuple[FakeApp, MediaStream],
) -> None:
    fake, stream = app_and_stream
    sid = stream.stream_sid
    sent_at = time.monotonic()
    for i in range(5):  # 5 x 40 ms of agent audio, a mark after each
        await fake.send({"event": "media", "streamSid": sid, "media": {"payload": b64(b"\x10" * 320)}})
        await fake.send({"event": "mark", "streamSid": sid, "mark": {"name": f"m{i}"}})
    await stream.wait_for(lambda: len(stream.marks_returned) == 5, timeout=2)
    returned = [(at - sent_at, name) for at, name in stream.marks_returned]
    assert [name for _, name in returned] == ["m0", "m1", "m2", "m3", "m4"]
    # In order, never before the audio queued ahead of each could have played (load can only delay a mark, so
    # that bound is safe on a busy machine), and the upper bound only catches a hang: CI saw 93 ms of delay.
    times = [elapsed for elapsed, _ in returned]
    assert times == sorted(times)
    for i, elapsed in enumerate(times):
        assert 0.04 * (i + 1) - 0.01 <= elapsed <= 0.04 * (i + 1) + 1.5
    await asyncio.sleep(0.05)
    echoed = fake.of("mark")
    assert [m["mark"]["name"] for m in echoed] == ["m0", "m1", "m2", "m3", "m4"]
    assert all(m["streamSid"] == sid for m in echoed)
    assert stream.played_ms() == pytest.approx(200, abs=1)


async def test_clear_drops_queued_audio_and_returns_pending_marks_at_once(
    app_and_stream: tuple[FakeApp, MediaStream],
) -> None:
    fake, stream = app_and_stream
    sid = stream.stream_sid
    await fake.send({"event": "media", "streamSid": sid, "media": {"payload": b64(b"\x10" * 8000)}})
    await fake.send({"event": "mark", "streamSid": sid, "mark": {"name": "long"}})
    await asyncio.sleep(0.2)
    await fake.send({"event": "clear", "streamSid": sid})
    await stream.wait_for(lambda: bool(stream.marks_returned), timeout=1)
    assert stream.marks_returned[0][0] - stream.clears[0] < 0.02
    assert 180 <= stream.played_ms() <= 260  # what was heard before the clear, not the whole second
    assert not stream.playing


async def test_protocol_errors_are_recorded(app_and_stream: tuple[FakeApp, MediaStream]) -> None:
    fake, stream = app_and_stream
    await fake.send({"event": "mark", "streamSid": stream.stream_sid, "mark": {}})
    await fake.send({"event": "media", "streamSid": "MZwrong", "media": {"payload": ""}})
    await fake.send({"event": "media", "streamSid": stream.stream_sid, "media": {"payload": "***"}})
    await stream.wait_for(lambda: len(stream.protocol_errors) == 3, timeout=1)


async def test_stop_then_close_when_twilio_ends_the_stream(app_and_stream: tuple[FakeApp, MediaStream]) -> None:
    fake, stream = app_and_stream
    await stream.dtmf("5")
    await stream.hang_up()
    await asyncio.sleep(0.05)
    assert fake.of("dtmf")[0]["dtmf"] == {"track": "inbound_track", "digit": "5"}
    stop = fake.of("stop")[0]
    assert stop["stop"] == {"accountSid": stream.double.account_sid, "callSid": stream.call.sid}
    assert fake.frames[-1][1]["event"] == "stop"  # nothing after stop
    assert stream.closed.is_set() and stream.call.status == "completed"


# -- phone numbers (IncomingPhoneNumbers, AvailablePhoneNumbers) ---------------------------------------------------
def test_numbers_api_pages_and_errors_as_twilio_does() -> None:
    with TwilioDouble() as twilio:
        for k in range(3):
            twilio.numbers.own(f"+1555013{k:04d}")
        twilio.numbers.offer("+14155550111")
        base = f"{twilio.api_base_url}/2010-04-01/Accounts/{twilio.account_sid}"
        auth = (twilio.account_sid, twilio.auth_token)
        first = httpx.get(f"{base}/IncomingPhoneNumbers.json", params={"PageSize": 2}, auth=auth).json()
        assert set(first) == {"incoming_phone_numbers", "end", "first_page_uri", "next_page_uri", "page", "page_size",
                              "previous_page_uri", "start", "uri"}
        assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 2, 0, 1)
        assert first["previous_page_uri"] is None and "PageToken=PA" in first["next_page_uri"]
        second = httpx.get(twilio.api_base_url + first["next_page_uri"], auth=auth).json()
        assert (second["page"], second["start"], second["next_page_uri"]) == (1, 2, None)
        assert [n["phone_number"] for n in first["incoming_phone_numbers"] + second["incoming_phone_numbers"]] == [
            "+15550130000", "+15550130001", "+15550130002"]
        resource = first["incoming_phone_numbers"][0]
        assert resource["sid"].startswith("PN") and len(resource["sid"]) == 34
        assert resource["uri"] == (
            f"/2010-04-01/Accounts/{twilio.account_sid}/IncomingPhoneNumbers/{resource['sid']}.json")
        assert resource["voice_method"] == "POST" and resource["capabilities"]["voice"] is True

        def error(response: httpx.Response) -> tuple[int, int]:
            body = response.json()
            assert set(body) == {"code", "message", "more_info", "status"}
            return response.status_code, body["code"]

        assert error(httpx.get(f"{base}/IncomingPhoneNumbers.json", auth=(twilio.account_sid, "wrong"))) == (401, 20003)
        missing = f"{base}/IncomingPhoneNumbers/PN{'0' * 32}.json"
        assert error(httpx.get(missing, auth=auth)) == (404, 20404)
        assert error(httpx.post(missing, data={"VoiceUrl": "https://x.test/v"}, auth=auth)) == (404, 20404)
        bad_url = httpx.post(f"{base}/IncomingPhoneNumbers/{resource['sid']}.json", data={"VoiceUrl": "ftp://x"},
                             auth=auth)
        assert error(bad_url) == (400, 21502)
        assert error(httpx.post(f"{base}/IncomingPhoneNumbers.json", data={"PhoneNumber": "+13105550000"},
                                auth=auth)) == (400, 21422)
        assert error(httpx.post(f"{base}/IncomingPhoneNumbers.json", data={"AreaCode": "999"}, auth=auth)) == (
            400, 21452)
        found = httpx.get(f"{base}/AvailablePhoneNumbers/US/Local.json", params={"AreaCode": "415"}, auth=auth).json()
        assert [n["phone_number"] for n in found["available_phone_numbers"]] == ["+14155550111"]
        assert found["available_phone_numbers"][0]["iso_country"] == "US"
        bought = httpx.post(f"{base}/IncomingPhoneNumbers.json", data={"AreaCode": "415"}, auth=auth)
        assert bought.status_code == 201 and bought.json()["phone_number"] == "+14155550111"
        assert httpx.get(f"{base}/AvailablePhoneNumbers/US/Local.json", auth=auth).json()[
            "available_phone_numbers"] == []
# -- Messaging (issue 9) ----------------------------------------------------------------------------------------
async def test_messages_api_speaks_twilios_json_errors_and_status_callbacks() -> None:
    import httpx
    from aiohttp import web
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    from app.telephony.rest import OriginRewritingHttpClient
    from tests.doubles.twilio_double import TwilioDouble

    callbacks: list[dict[str, str]] = []
    signatures: list[bool] = []

    with TwilioDouble() as double:
        double.sms_numbers = {"+15550001000"}

        async def status(request: web.Request) -> web.Response:
            form = {k: str(v) for k, v in (await request.post()).items()}
            signatures.append(double.validator.validate(str(request.url), form,
                                                        request.headers["X-Twilio-Signature"]))
            callbacks.append(form)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/status", status)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        callback_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/status"  # type: ignore[union-attr]
        try:
            client = Client(double.account_sid, double.auth_token,
                            http_client=OriginRewritingHttpClient(double.api_base_url))
            message = await client.messages.create_async(to="+15553334444", from_="+15550001000", body="Hello",
                                                         status_callback=callback_url)
            assert message.sid.startswith("SM") and message.status == "queued" and message.to == "+15553334444"
            fetched = await client.messages(message.sid).fetch_async()
            assert fetched.body == "Hello" and fetched.from_ == "+15550001000"
            for _ in range(100):
                if len(callbacks) == 2:
                    break
                await asyncio.sleep(0.05)
            assert [c["MessageStatus"] for c in callbacks] == ["sent", "delivered"] and all(signatures)
            assert callbacks[0]["MessageSid"] == message.sid

            double.opted_out.add("+15553335555")
            cases = [({"to": "+15553335555"}, 400, 21610), ({"from_": "+15550009999"}, 400, 21606),
                     ({"to": "12"}, 400, 21211), ({"body": "x" * 1601}, 400, 21617)]
            for override, status_code, code in cases:
                fields = {"to": "+15553334444", "from_": "+15550001000", "body": "Hi", **override}
                with pytest.raises(TwilioRestException) as refused:
                    await client.messages.create_async(**fields)
                assert (refused.value.status, refused.value.code) == (status_code, code)
            double.message_failures = [503]
            with pytest.raises(TwilioRestException) as unavailable:
                await client.messages.create_async(to="+15553334444", from_="+15550001000", body="Hi")
            assert unavailable.value.status == 503
            async with httpx.AsyncClient() as raw:
                unauthorised = await raw.post(f"{double.api_base_url}/2010-04-01/Accounts/{double.account_sid}/"
                                              "Messages.json", data={"To": "+15553334444"})
            assert unauthorised.status_code == 401 and unauthorised.json()["code"] == 20003
            assert len(double.messages) == 1
        finally:
            await runner.cleanup()


async def test_an_update_with_a_new_stream_stops_this_one_and_opens_that_one() -> None:
    """As Twilio does on `calls(sid).update(twiml=<Connect><Stream>)`: the current stream gets `stop` and its
    socket closes, then the new document runs: a new stream (new StreamSid) to the new URL with `connected` and
    `start` carrying its parameters; the call itself goes on."""
    from app.telephony import twiml
    from app.telephony.rest import TwilioCalls

    old_app, new_app = FakeApp(), FakeApp()
    async with serve(old_app.handler, "127.0.0.1", 0) as old_server, serve(new_app.handler, "127.0.0.1", 0) as new:
        old_port, new_port = old_server.sockets[0].getsockname()[1], new.sockets[0].getsockname()[1]
        with TwilioDouble() as double:
            call = DoubleCall(sid="CA" + "b" * 32, from_="+15551230000", to="+15559870000", status="in-progress")
            double.calls[call.sid] = call
            first = await double.open_stream(call, TwimlAnswer(200, "", stream_url=f"ws://127.0.0.1:{old_port}/a",
                                                               parameters={"session": "one"}))
            await old_app.connected.wait()
            rest = TwilioCalls(double.account_sid, double.auth_token, double.api_base_url)
            assert await rest.redirect(call.sid, twiml.connect_stream(f"ws://127.0.0.1:{new_port}/b", "two"))
            await asyncio.wait_for(new_app.connected.wait(), 5)
            await first.wait_for(lambda: first.closed.is_set(), timeout=5)
            async with asyncio.timeout(5):
                while not new_app.of("start"):  # noqa: ASYNC110 - the fake app has no event to wait on
                    await asyncio.sleep(0.02)
            [stop] = old_app.of("stop")
            assert stop["streamSid"] == first.stream_sid and first.ended_reason == "redirected"
            [start] = new_app.of("start")
            assert [f["event"] for _, f in new_app.frames][:2] == ["connected", "start"]
            assert start["start"]["customParameters"] == {"session": "two"} and start["start"]["callSid"] == call.sid
            assert start["streamSid"] != first.stream_sid and call.stream is not first and len(call.streams) == 2
            assert call.ended is None and call.status == "in-progress"
            await call.stream.close()  # type: ignore[union-attr]


# -- prices and <Dial> legs (issue 16 item 6) --------------------------------------------------------------------
async def test_calls_are_priced_a_while_after_they_end_and_dialed_legs_are_listed_by_parent() -> None:
    from twilio.rest import Client

    from app.telephony.rest import OriginRewritingHttpClient, TwilioCalls, TwilioRefused, TwilioUnavailable

    with TwilioDouble() as double:
        double.rating_seconds = 0.5
        now = time.time()
        parent = DoubleCall(sid="CA" + "1" * 32, from_="+15553334444", to="+15550001000", status="completed",
                            created=now - 71, answered=now - 70, ended=now)
        double.calls[parent.sid] = parent
        first = double.dial_leg(parent, "+12125550199", "+15550001000", "completed", 7)
        second = double.dial_leg(parent, "+12125550198", "+15550001000", "no-answer", 0)
        calls = TwilioCalls(double.account_sid, double.auth_token, double.api_base_url)
        unrated = await calls.call_legs(parent.sid)
        assert [(leg.sid, leg.price) for leg in unrated] == [(parent.sid, None), (second.sid, None),
                                                             (first.sid, None)]
        await asyncio.sleep(0.6)
        rated = {leg.sid: (leg.status, leg.price, leg.price_unit) for leg in await calls.call_legs(parent.sid)}
        assert rated == {parent.sid: ("completed", "-0.01700", "USD"),  # 70 s: two started minutes inbound
                         first.sid: ("completed", "-0.01400", "USD"), second.sid: ("no-answer", "0.00000", "USD")}
        # Twilio's list pages (PageSize, PageToken) as the SDK follows them, children only, with their parent.
        client = Client(double.account_sid, double.auth_token,
                        http_client=OriginRewritingHttpClient(double.api_base_url))
        listed = await client.calls.list_async(parent_call_sid=parent.sid, page_size=1)
        assert {c.sid for c in listed} == {first.sid, second.sid}
        assert {c.parent_call_sid for c in listed} == {parent.sid} and {c.direction for c in listed} == {
            "outbound-dial"}
        double.prices[first.sid] = None  # a test can hold a leg unrated
        assert sum(leg.price is None for leg in await calls.call_legs(parent.sid)) == 1
        double.fetch_failures = [503]
        with pytest.raises(TwilioUnavailable) as outage:
            await calls.call_legs(parent.sid)
        assert not isinstance(outage.value, TwilioRefused)
        with pytest.raises(TwilioRefused):
            await calls.call_legs("CA" + "9" * 32)
