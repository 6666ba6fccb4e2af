"""A Twilio double that behaves like Twilio towards the app, for tests.

Three parts, each speaking Twilio's real protocol:
- webhooks: `place_call` / `post_status` POST form parameters to the app, signed with the twilio SDK's own
  `RequestValidator.compute_signature`, and read the TwiML answer;
- media streams: `MediaStream` connects to the `<Stream url>` from that TwiML and sends `connected`, `start`
  (with the `<Parameter>`s as customParameters), one `media` frame of real mu-law audio every 20 ms (silence
  between utterances, as a phone line does), `dtmf` and `stop`; it plays the app's audio on a real-time clock,
  returns each mark when the audio queued before it has finished playing, and honours `clear`;
- REST: a local server (`api_base_url`) for `POST /2010-04-01/Accounts/{sid}/Calls/{CallSid}.json` with Basic
  auth, which records hang-ups and updates, ends the media stream the way Twilio does (a `stop`, then the
  socket closes) and answers with Twilio's JSON; an update whose TwiML is a new `<Connect><Stream>` then
  opens that stream (new StreamSid, `connected`, `start` with its parameters) and the call goes on there;
  the account's phone numbers (IncomingPhoneNumbers,
  AvailablePhoneNumbers) are in tests/doubles/twilio_numbers.py, served by the same server.
- Outbound calls: `POST …/Calls.json` (`To`, `From`, `Url` or `Twiml`, `StatusCallback` + `StatusCallbackEvent`,
  `MachineDetection`, `AsyncAmd`, `AsyncAmdStatusCallback`) answers 201 and plays the call out as Twilio does:
  signed status callbacks, the voice webhook with `Direction=outbound-api`, the async AMD verdict
  (`AnsweredBy`), and records what a call update `<Say>`s after a machine's beep (`said_after_beep`).
- Prices: `GET …/Calls/{CallSid}.json` carries `price` / `price_unit` as Twilio rates calls: null until
  `rating_seconds` after the call ended, then minus the started minutes times `rates[direction]` ("-0.01700";
  "0.00000" for a call nobody answered), or the value a test put in `prices[CallSid]` (None: never rated).
  A `<Dial>` the double carries out is a child call of its own (`parent_call_sid`, direction `outbound-dial`),
  listed by `GET …/Calls.json?ParentCallSid=` (paged as Twilio pages). `fetch_failures` makes the next GETs
  of calls answer 5xx.
- Messaging: `POST …/Messages.json` (`To`, `From`, `Body`, `StatusCallback`) answers 201 with the Message
  resource (`SM…` sid, status `queued`), refuses what Twilio refuses (21604 no To, 21602 no Body, 21211 bad To,
  21606 a From that is not one of `sms_numbers`, 21617 a Body over 1,600 characters, 21610 a recipient in
  `opted_out`), answers 5xx from `message_failures`, then POSTs signed status callbacks (`sent`, then
  `delivered`, or `undelivered` with ErrorCode for numbers in `undeliverable`). `GET …/Messages/{sid}.json`.

The REST server runs in its own thread with its own event loop, so sync and async tests can both use it;
media streams live in the test's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import secrets
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.doubles.twilio_numbers import NumbersApi
from tests.support.threaded_site import OnThreadedSite, ThreadedSite

ASSETS = Path(__file__).resolve().parent.parent / "assets"
FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
ULAW_SILENCE = b"\xff"


def sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def read_ulaw_wav(path: Path | str) -> bytes:
    """The data chunk of a mu-law WAV (format tag 7), which the stdlib `wave` module cannot open."""
    raw = Path(path).read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path} is not a RIFF/WAVE file")
    offset, fmt_tag, data = 12, None, None
    while offset + 8 <= len(raw):
        name, size = raw[offset : offset + 4], struct.unpack("<I", raw[offset + 4 : offset + 8])[0]
        body = raw[offset + 8 : offset + 8 + size]
        if name == b"fmt ":
            fmt_tag, channels, rate = struct.unpack("<HHI", body[:8])
            if (fmt_tag, channels, rate) != (7, 1, 8000):
                raise ValueError(f"{path}: expected mono 8 kHz mu-law, got tag {fmt_tag}, {channels} ch, {rate} Hz")
        elif name == b"data":
            data = body
        offset += 8 + size + (size & 1)
    if fmt_tag is None or data is None:
        raise ValueError(f"{path}: missing fmt or data chunk")
    return data


def caller_audio(name: str) -> bytes:
    """`name` is one of tests/assets/NAME-8k-ulaw.wav: book, hours, person, bye, interrupt."""
    return read_ulaw_wav(ASSETS / f"{name}-8k-ulaw.wav")


# -- TwiML ------------------------------------------------------------------------------------------------
@dataclass
class TwimlAnswer:
    status_code: int
    body: str
    stream_url: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    says: list[str] = field(default_factory=list)
    dial: str | None = None
    hangup: bool = False
    #: what the <Say> verbs after <Connect> speak once the stream's socket closes
    after_stream: list[str] = field(default_factory=list)
    #: <Dial>'s attributes (timeout, action, callerId…) and <Record>'s, when the document has them
    dial_attributes: dict[str, str] = field(default_factory=dict)
    record: dict[str, str] | None = None
    #: <Say> texts that come after <Record> (spoken only when nothing was recorded)
    after_record: list[str] = field(default_factory=list)
    #: each <Say>'s (voice, language) attributes, in order (None where absent)
    say_voices: list[tuple[str | None, str | None]] = field(default_factory=list)


def parse_twiml(status_code: int, body: str) -> TwimlAnswer:
    answer = TwimlAnswer(status_code=status_code, body=body)
    if status_code != 200:
        return answer
    root = ET.fromstring(body)
    if root.tag != "Response":
        raise ValueError(f"TwiML root must be <Response>, got <{root.tag}>")
    for verb in root:
        if verb.tag == "Connect":
            stream = verb.find("Stream")
            if stream is None:
                raise ValueError("<Connect> without <Stream>")
            answer.stream_url = stream.attrib["url"]
            if "?" in answer.stream_url:
                raise ValueError("Twilio drops the query string of a <Stream> url")
            for parameter in stream.findall("Parameter"):
                answer.parameters[parameter.attrib["name"]] = parameter.attrib["value"]
        elif verb.tag == "Say":
            answer.says.append(verb.text or "")
            answer.say_voices.append((verb.attrib.get("voice"), verb.attrib.get("language")))
            if answer.stream_url:
                answer.after_stream.append(verb.text or "")
            if answer.record is not None:
                answer.after_record.append(verb.text or "")
        elif verb.tag == "Record":
            answer.record = dict(verb.attrib)
        elif verb.tag == "Hangup":
            answer.hangup = True
        elif verb.tag == "Dial":
            number = verb.find("Number")
            answer.dial = (number.text if number is not None else verb.text or "").strip()
            answer.dial_attributes = dict(verb.attrib)
    return answer


# -- call state shared by the webhook side, the media streams and the REST thread ----------------------------
@dataclass
class DoubleCall:
    sid: str
    from_: str
    to: str
    status: str = "ringing"
    created: float = field(default_factory=time.time)
    answered: float | None = None
    ended: float | None = None
    dialed: str | None = None
    ended_by: str | None = None
    stream: MediaStream | None = None
    #: the rest of the TwiML document being carried out, and what of it the caller heard
    after_stream: list[str] = field(default_factory=list)
    said_after_stream: list[str] = field(default_factory=list)
    #: the fallback path: every TwiML document the call carried out after its stream, what <Dial> and
    #: <Record> did, and the recording left
    documents: list[TwimlAnswer] = field(default_factory=list)
    dial_status: str | None = None
    recording_sid: str | None = None
    carrying_out: bool = False
    #: time.monotonic() just before the voice webhook POST was sent, and when its answer was read
    webhook_sent_at: float | None = None
    webhook_answered_at: float | None = None
    #: every media stream the call had, in order: a call updated with a new <Connect><Stream> gets a new one
    streams: list[MediaStream] = field(default_factory=list)
    #: the new document while its stream replaces the current one (the old socket's close ends nothing)
    redirecting: TwimlAnswer | None = None
    #: outbound calls (POST Calls.json): the create request, its own status callback and events, the async AMD
    #: callback, who answered (AnsweredBy), the voice webhook's TwiML answer, and what was <Say>d after the beep
    direction: str = "inbound"
    create_form: dict[str, str] = field(default_factory=dict)
    status_callback: str | None = None
    status_events: list[str] = field(default_factory=list)
    answered_by: str | None = None
    voice_answer: TwimlAnswer | None = None
    beeped: bool = False
    said_after_beep: list[str] = field(default_factory=list)
    #: a <Dial>ed leg's parent call (Twilio's ParentCallSid), and the legs this call <Dial>ed
    parent_call_sid: str | None = None
    child_sids: list[str] = field(default_factory=list)

    def resource(self, account_sid: str) -> dict[str, Any]:
        """The Call resource as Twilio's JSON shows it."""

        def rfc2822(ts: float | None) -> str | None:
            return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True) if ts else None

        duration = int(self.ended - (self.answered or self.created)) if self.ended else None
        uri = f"/2010-04-01/Accounts/{account_sid}/Calls/{self.sid}.json"
        return {
            "account_sid": account_sid, "annotation": None, "answered_by": self.answered_by,
            "api_version": "2010-04-01",
            "caller_name": None, "date_created": rfc2822(self.created), "date_updated": rfc2822(time.time()),
            "direction": self.direction, "duration": str(duration) if duration is not None else None,
            "end_time": rfc2822(self.ended), "forwarded_from": None, "from": self.from_,
            "from_formatted": self.from_, "group_sid": None, "parent_call_sid": None,
            "phone_number_sid": "PN" + "0" * 32, "price": None, "price_unit": "USD", "queue_time": "0",
            "sid": self.sid, "start_time": rfc2822(self.answered), "status": self.status,
            "subresource_uris": {"recordings": uri.replace(".json", "/Recordings.json")}, "to": self.to,
            "to_formatted": self.to, "trunk_sid": None, "uri": uri,
        }


@dataclass(frozen=True)
class RestRequest:
    at: float  # time.monotonic()
    call_sid: str
    form: dict[str, str]
    status_code: int

    @property
    def is_hang_up(self) -> bool:
        return self.form.get("Status") == "completed"


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _twilio_error(status: int, code: int, message: str) -> web.Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return web.json_response(body, status=status)


class TwilioDouble(OnThreadedSite):
    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.validator = RequestValidator(self.auth_token)
        self.calls: dict[str, DoubleCall] = {}
        self.rest_requests: list[RestRequest] = []
        #: status codes the next REST requests answer with (e.g. [500]); consumed in order
        self.rest_failures: list[int] = []
        #: where call-progress events go when a call ends (the number's status callback), or None
        self.status_callback_url: str | None = None
        self.status_callbacks: list[dict[str, str]] = []
        #: the account's phone numbers (IncomingPhoneNumbers, AvailablePhoneNumbers): tests/doubles/twilio_numbers.py
        self.numbers = NumbersApi(self)
        # Messaging
        self.messages: list[dict[str, Any]] = []
        #: every POST to Messages.json, accepted or not: (form, status code)
        self.message_requests: list[tuple[dict[str, str], int]] = []
        #: numbers the account may send from (None: any E.164 number, as on an account with many numbers)
        self.sms_numbers: set[str] | None = None
        #: recipients that replied STOP (error 21610) and recipients the carrier will not deliver to (30003)
        self.opted_out: set[str] = set()
        self.undeliverable: set[str] = set()
        #: status codes the next Messages.json requests answer with (e.g. [503, 500]); consumed in order
        self.message_failures: list[int] = []
        self.message_callbacks: list[dict[str, str]] = []
        #: how a <Dial>ed person answers (Twilio's DialCallStatus), and what a caller says to <Record>
        self.dial_outcome = "no-answer"
        self.voicemail_audio: bytes = b""
        self.recordings: dict[str, bytes] = {}  # RecordingSid -> mu-law audio, served as WAV
        self.fallback_posts: list[tuple[str, dict[str, str]]] = []  # (url, form) of Dial/Record callbacks
        #: outbound calls: who answers each number (AnsweredBy, or no-answer / busy / failed), how long it rings,
        #: how long AMD takes to hear a person and a machine's greeting lasts, every Calls.json request
        self.outbound_answers: dict[str, str] = {}
        self.outbound_default = "human"
        self.ring_seconds = 0.2
        self.amd_seconds = 0.5
        self.machine_greeting_seconds = 1.0
        self.created_calls: list[dict[str, str]] = []
        self.create_failures: list[int] = []
        self.amd_callbacks: list[dict[str, str]] = []
        #: prices (issue 16 item 6): how long after a call ends Twilio rates it, USD per started minute by
        #: direction, test-set prices by CallSid (None: never rated), the account's currency, and status codes
        #: the next GETs of Calls answer with (e.g. [503]); consumed in order
        self.rating_seconds = 1.0
        self.rates: dict[str, str] = {"inbound": "0.0085", "outbound-api": "0.0140", "outbound-dial": "0.0140"}
        self.prices: dict[str, str | None] = {}
        self.price_unit = "USD"
        self.fetch_failures: list[int] = []
        self.call_fetches: list[str] = []
        self._lock = threading.Lock()
        self._site = ThreadedSite("twilio-double", self._app)

    # -- lifecycle ----------------------------------------------------------------------------------------
    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls.json", self._create_call)
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._update_call)
        app.router.add_get("/2010-04-01/Accounts/{account}/Calls/{call}.json", self._fetch_call)
        app.router.add_get("/2010-04-01/Accounts/{account}/Calls.json", self._list_calls)
        self.numbers.add_routes(app)
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", self._create_message)
        app.router.add_get("/2010-04-01/Accounts/{account}/Messages/{message}.json", self._fetch_message)
        app.router.add_get("/2010-04-01/Accounts/{account}/Recordings/{recording}.wav", self._fetch_recording)
        app.on_cleanup.append(self._cancel_callbacks)
        return app

    async def _cancel_callbacks(self, _app: web.Application) -> None:
        """Status callbacks still on their way when the double stops are dropped, as a stopped Twilio would."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.rest_requests.clear()
            self.rest_failures.clear()
            self.status_callbacks.clear()
            self.messages.clear()
            self.message_requests.clear()
            self.message_failures.clear()
            self.message_callbacks.clear()
            self.opted_out.clear()
            self.undeliverable.clear()
            self.recordings.clear()
            self.fallback_posts.clear()
            self.outbound_answers.clear()
            self.created_calls.clear()
            self.create_failures.clear()
            self.amd_callbacks.clear()
            self.prices.clear()
            self.fetch_failures.clear()
            self.call_fetches.clear()
        self.rating_seconds = 1.0
        self.outbound_default = "human"
        self.dial_outcome = "no-answer"
        self.voicemail_audio = b""
        self.numbers.reset()

    # -- signing and webhooks -----------------------------------------------------------------------------
    def sign(self, url: str, params: dict[str, str]) -> str:
        return self.validator.compute_signature(url, params)

    async def post_webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None, signed: bool = True
    ) -> httpx.Response:
        return (await self._post_webhook(url, params, signature=signature, signed=signed))[1]

    async def _post_webhook(
        self, url: str, params: dict[str, str], *, signature: str | None = None, signed: bool = True
    ) -> tuple[float, httpx.Response]:
        """The POST and the time.monotonic() just before it was sent (client set-up excluded)."""
        headers = {"X-Twilio-Signature": signature or self.sign(url, params)} if signed else {}
        headers["User-Agent"] = "TwilioProxy/1.1"
        async with httpx.AsyncClient(timeout=10) as client:
            at = time.monotonic()
            return at, await client.post(url, data=params, headers=headers)

    def voice_params(self, call: DoubleCall) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.sid,
            "CallStatus": "ringing" if call.direction == "inbound" else "in-progress", "Called": call.to,
            "CalledCountry": "US", "Caller": call.from_, "CallerCountry": "US", "Direction": call.direction,
            "From": call.from_, "FromCountry": "US", "To": call.to, "ToCountry": "US",
        }

    async def place_call(
        self, voice_url: str, *, to: str, from_: str, call_sid: str | None = None, signature: str | None = None,
        signed: bool = True,
    ) -> tuple[DoubleCall, TwimlAnswer]:
        """A caller dials `to`: Twilio POSTs the signed voice webhook and reads the TwiML it gets back."""
        call = DoubleCall(sid=call_sid or sid("CA"), from_=from_, to=to)
        with self._lock:
            self.calls[call.sid] = call
        call.webhook_sent_at, response = await self._post_webhook(
            voice_url, self.voice_params(call), signature=signature, signed=signed
        )
        call.webhook_answered_at = time.monotonic()
        answer = parse_twiml(response.status_code, response.text)
        if answer.stream_url:
            call.status, call.answered = "in-progress", time.time()
        elif answer.record is not None or answer.dial:
            call.status, call.answered = "in-progress", time.time()
            self._carry_out_soon(call, answer)
        elif answer.status_code != 200 or answer.hangup:
            self._end(call, "completed" if answer.status_code == 200 else "failed", "twiml")
        return call, answer

    async def post_status(self, status_url: str, call: DoubleCall, status: str, *, duration: int = 0) -> httpx.Response:
        """A call-progress event as Twilio sends it to the number's status callback."""
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.sid, "CallStatus": status,
            "Called": call.to, "Caller": call.from_, "Direction": call.direction, "From": call.from_, "To": call.to,
            "CallbackSource": "call-progress-events", "SequenceNumber": "0",
            "Timestamp": format_datetime(datetime.now(UTC), usegmt=True),
        }
        if status == "completed":
            params["CallDuration"] = str(duration)
            params["Duration"] = str(max(1, (duration + 59) // 60))
        self.status_callbacks.append(params)
        return await self.post_webhook(status_url, params)

    def _end(self, call: DoubleCall, status: str, by: str) -> None:
        with self._lock:
            if call.ended is not None:
                return
            call.status, call.ended, call.ended_by = status, time.time(), by

    async def open_stream(self, call: DoubleCall, answer: TwimlAnswer, *, handshake: bool = True) -> MediaStream:
        """Connect the media stream the TwiML asked for (and send `connected` + `start`)."""
        assert answer.stream_url, f"the TwiML has no <Stream>: {answer.body}"
        stream = MediaStream(self, call, answer.stream_url, answer.parameters)
        call.after_stream = list(answer.after_stream)
        await stream.connect()
        if handshake:
            await stream.send_connected()
            await stream.send_start()
        return stream

    # -- REST ---------------------------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme.lower() == "basic" and login == self.account_sid and password == self.auth_token

    async def _fetch_call(self, request: web.Request) -> web.Response:
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        with self._lock:
            self.call_fetches.append(request.match_info["call"])
            failure = self.fetch_failures.pop(0) if self.fetch_failures else None
        if failure is not None:
            return _twilio_error(failure, 20500, "An internal server error has occurred")
        call = self.calls.get(request.match_info["call"])
        if call is None:
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(self._priced_resource(call))

    # -- prices, as Twilio rates a call some time after it ended ---------------------------------------------
    def price_of(self, call: DoubleCall) -> str | None:
        """Twilio's `price` of the call now: null until it is rated, then negative ("-0.01700")."""
        if call.sid in self.prices:
            return self.prices[call.sid]
        if call.ended is None or time.time() < call.ended + self.rating_seconds:
            return None
        if call.answered is None or call.status != "completed":
            return "0.00000"  # Twilio bills no call nobody answered
        minutes = max(1, -(-int(call.ended - call.answered) // 60))
        return f"{-minutes * float(self.rates.get(call.direction, '0.0140')):.5f}"

    def _priced_resource(self, call: DoubleCall) -> dict[str, Any]:
        return call.resource(self.account_sid) | {"price": self.price_of(call), "price_unit": self.price_unit,
                                                  "parent_call_sid": call.parent_call_sid}

    async def _list_calls(self, request: web.Request) -> web.Response:
        """`GET Calls.json` with Twilio's filters this double knows (ParentCallSid, To, From, Status), paged."""
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        with self._lock:
            failure = self.fetch_failures.pop(0) if self.fetch_failures else None
            calls = list(self.calls.values())
        if failure is not None:
            return _twilio_error(failure, 20500, "An internal server error has occurred")
        query = request.query
        for name, attribute in (("ParentCallSid", "parent_call_sid"), ("To", "to"), ("From", "from_"),
                                ("Status", "status")):
            if name in query:
                calls = [c for c in calls if getattr(c, attribute) == query[name]]
        calls.sort(key=lambda c: c.created, reverse=True)  # Twilio lists the newest first
        return self.numbers._paged(request, "calls", [self._priced_resource(c) for c in calls])

    def dial_leg(self, parent: DoubleCall, to: str, caller_id: str | None, dial_status: str,
                 duration: int) -> DoubleCall:
        """The child call a <Dial> places (its own Call resource, billed apart)."""
        now = time.time()
        answered = dial_status in {"completed", "answered"}
        leg = DoubleCall(sid=sid("CA"), from_=caller_id or parent.to, to=to, direction="outbound-dial",
                         status="completed" if answered else dial_status, created=now - duration,
                         answered=now - duration if answered else None, ended=now, parent_call_sid=parent.sid)
        with self._lock:
            self.calls[leg.sid] = leg
            parent.child_sids.append(leg.sid)
        return leg

    async def _update_call(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        call_sid = request.match_info["call"]

        def record(status_code: int) -> None:
            with self._lock:
                self.rest_requests.append(RestRequest(time.monotonic(), call_sid, form, status_code))

        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            record(401)
            return _twilio_error(401, 20003, "Authenticate")
        if self.rest_failures:
            status = self.rest_failures.pop(0)
            record(status)
            return _twilio_error(status, 20500, "An internal server error has occurred")
        call = self.calls.get(call_sid)
        if call is None:
            record(404)
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if "Twiml" in form:
            if call.ended is not None:
                record(400)
                return _twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
            answer = parse_twiml(200, form["Twiml"])
            call.after_stream = []  # the new document replaces the rest of the old one
            call.dialed = answer.dial
            if call.beeped:  # an answering machine records whatever is said after its beep
                call.said_after_beep.extend(answer.says)
            if answer.stream_url:
                # As Twilio does: the current stream gets its `stop` and its socket closes, then the new
                # document runs: a new stream (new StreamSid) to the new URL, with `connected` and `start`.
                call.redirecting = answer
                self._restream(call, answer)
                record(200)
                return web.json_response(call.resource(self.account_sid))
            if answer.hangup and not answer.dial and answer.record is None:
                self._end(call, "completed", "rest-twiml")
                if call.status_callback:
                    self._status_callback_soon(call)
            if answer.record is not None or answer.dial_attributes.get("action"):
                self._carry_out_soon(call, answer)
            self._stop_stream(call, "redirected")
        elif form.get("Status") in {"completed", "canceled"}:
            if call.ended is None:
                self._end(call, "completed", "rest-hangup")
                self._stop_stream(call, "hung up through REST")
                self._status_callback_soon(call)
        else:
            record(400)
            return _twilio_error(400, 21218, "Invalid ApplicationSid")
        record(200)
        return web.json_response(call.resource(self.account_sid))

    # -- <Dial action> and <Record>, as Twilio carries them out -----------------------------------------
    def _carry_out_soon(self, call: DoubleCall, answer: TwimlAnswer) -> None:
        assert self._loop is not None
        call.carrying_out = True
        asyncio.run_coroutine_threadsafe(self._carry_out(call, answer), self._loop)

    async def _carry_out(self, call: DoubleCall, answer: TwimlAnswer) -> None:
        """Follow a document's <Dial action=…> (the person answers as `dial_outcome` says) and <Record>
        (the caller says `voicemail_audio`): POST the action and the recording status callback as Twilio does,
        and go on with the TwiML the action answers."""
        for _step in range(5):
            call.documents.append(answer)
            await asyncio.sleep(0.05)  # the stream's `stop` and socket close go out first
            if answer.dial:
                call.dial_status = self.dial_outcome
                self.dial_leg(call, answer.dial, answer.dial_attributes.get("callerId"), self.dial_outcome,
                              7 if self.dial_outcome in {"completed", "answered"} else 0)
                action = answer.dial_attributes.get("action")
                if action is None:
                    break  # without an action the next verb runs; a bare <Dial> ends the call here
                params = self._callback_params(call) | {"DialCallStatus": self.dial_outcome,
                                                        "DialCallDuration": "7" if self.dial_outcome in
                                                        {"completed", "answered"} else "0"}
                answer = await self._post_callback(action, params)
                continue
            if answer.record is not None:
                record = answer.record
                audio = self.voicemail_audio[: int(record.get("maxLength", "3600")) * 8000]
                if not audio:
                    call.said_after_stream.extend(answer.after_record)
                    break  # an empty recording skips the action; the verbs after <Record> run
                recording_sid = sid("RE")
                call.recording_sid = recording_sid
                self.recordings[recording_sid] = audio
                url = f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"
                duration = str(max(1, len(audio) // 8000))
                recording = {"RecordingSid": recording_sid, "RecordingUrl": url, "RecordingDuration": duration}
                next_answer = await self._post_callback(record.get("action", ""),
                                                        self._callback_params(call) | recording | {"Digits": "hangup"})
                callback = record.get("recordingStatusCallback")
                if callback:
                    await self._post_callback(callback, {
                        "AccountSid": self.account_sid, "CallSid": call.sid, **recording,
                        "RecordingStatus": "completed", "RecordingChannels": "1", "RecordingSource": "RecordVerb",
                        "RecordingStartTime": format_datetime(datetime.now(UTC), usegmt=True)})
                answer = next_answer
                continue
            call.said_after_stream.extend(answer.says)
            break
        self._end(call, "completed", "twiml-fallback")
        self._status_callback_soon(call)

    def _callback_params(self, call: DoubleCall) -> dict[str, str]:
        return self.voice_params(call) | {"CallStatus": "in-progress"}

    async def _post_callback(self, url: str, params: dict[str, str]) -> TwimlAnswer:
        self.fallback_posts.append((url, params))
        try:
            _at, response = await self._post_webhook(url, params)
        except httpx.HTTPError:
            return TwimlAnswer(0, "")
        if response.status_code == 204 or not response.text.strip():
            return TwimlAnswer(response.status_code, response.text)
        return parse_twiml(response.status_code, response.text)

    async def _fetch_recording(self, request: web.Request) -> web.Response:
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        audio = self.recordings.get(request.match_info["recording"])
        if audio is None:
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(audio), b"WAVE", b"fmt ", 16, 7, 1, 8000,
                             8000, 1, 8, b"data", len(audio))
        return web.Response(body=header + audio, content_type="audio/x-wav")

    def _restream(self, call: DoubleCall, answer: TwimlAnswer) -> None:
        stream = call.stream
        if stream is None or stream.loop is None or stream.loop.is_closed():
            call.redirecting = None
            return
        asyncio.run_coroutine_threadsafe(self._follow_stream(call, stream, answer), stream.loop)

    async def _follow_stream(self, call: DoubleCall, old: MediaStream, answer: TwimlAnswer) -> None:
        await old.end_from_twilio("redirected")
        assert answer.stream_url is not None
        stream = MediaStream(self, call, answer.stream_url, answer.parameters)
        call.after_stream = list(answer.after_stream)
        try:
            await stream.connect()
            await stream.send_connected()
            await stream.send_start()
        except (OSError, TimeoutError, InvalidHandshake):
            # The stream could not be opened: Twilio goes on with the document's next verbs.
            call.said_after_stream.extend(answer.after_stream)
            self._end(call, "completed", "twiml-after-stream")
            self._status_callback_soon(call)
        finally:
            call.redirecting = None

    def _stop_stream(self, call: DoubleCall, reason: str) -> None:
        stream = call.stream
        if stream is not None and stream.loop is not None and not stream.loop.is_closed():
            asyncio.run_coroutine_threadsafe(stream.end_from_twilio(reason), stream.loop)

    def _status_callback_soon(self, call: DoubleCall) -> None:
        url = call.status_callback or self.status_callback_url
        if url is None or self._loop is None or self.calls.get(call.sid) is not call:
            return  # a leg replaced by a retried webhook is not the call Twilio reports on
        duration = int((call.ended or time.time()) - (call.answered or call.created))
        asyncio.run_coroutine_threadsafe(self._post_status_quietly(url, call, duration), self._loop)

    async def _post_status_quietly(self, url: str, call: DoubleCall, duration: int) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self.post_status(url, call, "completed", duration=duration)

    # -- Messaging ----------------------------------------------------------------------------------------
    def _message_resource(self, message: dict[str, Any]) -> dict[str, Any]:
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{message['sid']}.json"
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": message["body"],
            "date_created": message["date_created"], "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": message.get("error_code"),
            "error_message": None, "from": message["from"], "messaging_service_sid": None,
            "num_media": "0", "num_segments": str(max(1, (len(message["body"]) + 152) // 153)),
            "price": None, "price_unit": "USD", "sid": message["sid"], "status": message["status"],
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")}, "to": message["to"], "uri": uri,
        }

    async def _create_message(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}

        def answer(response: web.Response) -> web.Response:
            with self._lock:
                self.message_requests.append((form, response.status))
            return response

        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return answer(_twilio_error(401, 20003, "Authenticate"))
        if self.message_failures:
            status = self.message_failures.pop(0)
            return answer(_twilio_error(status, 20500, "An internal server error has occurred"))
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return answer(_twilio_error(400, 21604, "A 'To' phone number is required."))
        if not body:
            return answer(_twilio_error(400, 21602, "Message body is required."))
        if not _E164.match(to):
            return answer(_twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number."))
        if not _E164.match(from_) or (self.sms_numbers is not None and from_ not in self.sms_numbers):
            return answer(_twilio_error(400, 21606, "The From phone number " + from_ +
                                        " is not a valid, SMS-capable inbound phone number or short code for your "
                                        "account."))
        if len(body) > 1600:
            return answer(_twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit."))
        if to in self.opted_out:
            return answer(_twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
        message = {"sid": sid("SM"), "to": to, "from": from_, "body": body, "status": "queued",
                   "date_created": format_datetime(datetime.now(UTC), usegmt=True),
                   "status_callback": form.get("StatusCallback"), "at": time.monotonic()}
        with self._lock:
            self.messages.append(message)
        if message["status_callback"]:
            asyncio.get_running_loop().create_task(self._message_progress(message))
        return answer(web.json_response(self._message_resource(message), status=201))

    async def _message_progress(self, message: dict[str, Any]) -> None:
        """Twilio's status callbacks: sent, then delivered (or undelivered, 30003, for `undeliverable`)."""
        steps = ["sent", "undelivered" if message["to"] in self.undeliverable else "delivered"]
        for status in steps:
            await asyncio.sleep(0.05)
            message["status"] = status
            params = {
                "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "From": message["from"],
                "MessageSid": message["sid"], "MessageStatus": status, "SmsSid": message["sid"],
                "SmsStatus": status, "To": message["to"],
            }
            if status == "undelivered":
                message["error_code"] = 30003
                params["ErrorCode"] = "30003"
            with self._lock:
                self.message_callbacks.append(params)
            with contextlib.suppress(httpx.HTTPError):
                await self.post_webhook(message["status_callback"], params)

    async def _fetch_message(self, request: web.Request) -> web.Response:
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        found = next((m for m in self.messages if m["sid"] == request.match_info["message"]), None)
        if found is None:
            return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(self._message_resource(found))

    def texts_to(self, number: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["to"] == number]

    # -- outbound calls (POST Calls.json), as Twilio places them ----------------------------------------------
    async def _create_call(self, request: web.Request) -> web.Response:
        """`Calls.create`: answers 201 with the Call resource (queued), then plays the call out: status callbacks
        (initiated, ringing, answered, completed, as StatusCallbackEvent asked; completed always), the voice
        webhook (`Direction=outbound-api`) or the inline Twiml, and the async AMD verdict. Who picks up is
        `outbound_answers[To]` (else `outbound_default`): an AnsweredBy value (human, machine_end_beep, …, fax)
        or a final status nobody answered with (no-answer, busy, failed)."""
        form: dict[str, Any] = {}
        events: list[str] = []
        for key, value in (await request.post()).items():
            if key == "StatusCallbackEvent":
                events.extend(str(value).split())
            else:
                form[key] = str(value)
        if not self._authorised(request) or request.match_info["account"] != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        with self._lock:
            self.created_calls.append(form | {"StatusCallbackEvent": " ".join(events)})
        if self.create_failures:
            status = self.create_failures.pop(0)
            return _twilio_error(status, 20500, "An internal server error has occurred")
        to, from_ = form.get("To", ""), form.get("From", "")
        if not to:
            return _twilio_error(400, 21201, "No 'To' number is specified")
        if not _E164.match(to):
            return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _E164.match(from_):
            return _twilio_error(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if not form.get("Url") and not form.get("Twiml"):
            return _twilio_error(400, 21205, "Url parameter is required.")
        if len(form.get("Twiml", "")) > 4000:
            return _twilio_error(400, 21230, "Twiml is too long (4000 characters at most).")
        if form.get("AsyncAmd") == "true" and not form.get("AsyncAmdStatusCallback"):
            return _twilio_error(400, 21262, "No AMD status callback URL provided")
        call = DoubleCall(sid=sid("CA"), from_=from_, to=to, status="queued", direction="outbound-api",
                          create_form=form, status_callback=form.get("StatusCallback"), status_events=events)
        with self._lock:
            self.calls[call.sid] = call
        asyncio.get_running_loop().create_task(self._play_outbound(call))
        return web.json_response(call.resource(self.account_sid), status=201)

    async def _call_event(self, call: DoubleCall, event: str, status: str, *, duration: int | None = None) -> None:
        if not call.status_callback or (event != "completed" and event not in call.status_events):
            return
        params = {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call.sid, "CallStatus": status,
            "Called": call.to, "Caller": call.from_, "Direction": call.direction, "From": call.from_, "To": call.to,
            "CallbackSource": "call-progress-events", "SequenceNumber": str(len(self.status_callbacks)),
            "Timestamp": format_datetime(datetime.now(UTC), usegmt=True),
        }
        if duration is not None:
            params["CallDuration"] = str(duration)
            params["Duration"] = str(max(1, (duration + 59) // 60)) if duration else "0"
        self.status_callbacks.append(params)
        with contextlib.suppress(httpx.HTTPError):
            await self.post_webhook(call.status_callback, params)

    async def _play_outbound(self, call: DoubleCall) -> None:
        await asyncio.sleep(0.05)
        call.status = "initiated"
        await self._call_event(call, "initiated", "initiated")
        call.status = "ringing"
        await self._call_event(call, "ringing", "ringing")
        await asyncio.sleep(self.ring_seconds)
        outcome = self.outbound_answers.get(call.to, self.outbound_default)
        if outcome in {"no-answer", "busy", "failed"}:
            self._end(call, outcome, f"outbound-{outcome}")
            await self._call_event(call, "completed", outcome, duration=0)
            return
        call.status, call.answered = "in-progress", time.time()
        await self._call_event(call, "answered", "in-progress")
        form = call.create_form
        if form.get("Twiml"):
            answer = parse_twiml(200, form["Twiml"])
        else:
            url = form["Url"]
            call.webhook_sent_at, response = await self._post_webhook(url, self.voice_params(call))
            call.webhook_answered_at = time.monotonic()
            answer = parse_twiml(response.status_code, response.text)
        call.voice_answer = answer
        if answer.stream_url:
            call.after_stream = list(answer.after_stream)
        elif answer.dial or answer.record is not None:
            self._carry_out_soon(call, answer)  # a click-to-call's <Dial>: ends with the completed callback
        else:
            call.said_after_stream.extend(answer.says)
            self._end(call, "completed", "twiml")
            self._status_callback_soon(call)
        if form.get("AsyncAmd") == "true" and form.get("MachineDetection"):
            await self._post_amd(call, outcome)

    async def _post_amd(self, call: DoubleCall, answered_by: str) -> None:
        """The async AMD verdict: a person is told apart quickly; DetectMessageEnd reports a machine only once
        its greeting has ended (machine_end_beep: the beep has just sounded)."""
        if call.voice_answer is not None and call.voice_answer.stream_url:
            for _ in range(200):  # Twilio's detection listens to the answered call: wait for its stream
                if call.stream is not None or call.ended is not None:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(self.amd_seconds if answered_by == "human" else self.machine_greeting_seconds)
        if call.ended is not None:
            return
        call.answered_by = answered_by
        call.beeped = answered_by.startswith("machine_end")
        params = {"AccountSid": self.account_sid, "CallSid": call.sid, "AnsweredBy": answered_by,
                  "MachineDetectionDuration": str(int(1000 * (self.amd_seconds if answered_by == "human"
                                                              else self.machine_greeting_seconds)))}
        self.amd_callbacks.append(params)
        with contextlib.suppress(httpx.HTTPError):
            await self.post_webhook(call.create_form["AsyncAmdStatusCallback"], params)

    def outbound_calls_to(self, number: str) -> list[DoubleCall]:
        with self._lock:
            return [c for c in self.calls.values() if c.direction == "outbound-api" and c.to == number]

    # -- what tests read ----------------------------------------------------------------------------------
    def hang_ups(self, call_sid: str) -> list[RestRequest]:
        return [r for r in self.rest_requests if r.call_sid == call_sid and r.is_hang_up]

    def updates(self, call_sid: str) -> list[RestRequest]:
        return [r for r in self.rest_requests if r.call_sid == call_sid]


# -- media streams --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() of arrival
    message: dict[str, Any]


@dataclass
class _Queued:
    """Agent audio or a mark waiting in the playback queue."""

    start: float  # monotonic time it starts playing
    end: float
    audio: bytes = b""
    mark: str | None = None
    timer: asyncio.TimerHandle | None = None


class MediaStream:
    """One bidirectional media stream, from Twilio's side."""

    def __init__(self, double: TwilioDouble, call: DoubleCall, url: str, parameters: dict[str, str]) -> None:
        self.double, self.call, self.url, self.parameters = double, call, url, parameters
        self.stream_sid = sid("MZ")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ws: ClientConnection | None = None
        self._sequence = 0
        self._chunk = 0
        self._stream_started: float | None = None
        self._speech: bytearray = bytearray()
        self._speech_done: list[tuple[int, asyncio.Future[None]]] = []
        self._sent_speech = 0
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._playback: list[_Queued] = []
        self._playing_until = 0.0
        self._send_lock = asyncio.Lock()
        self.received: list[Received] = []
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.marks_returned: list[tuple[float, str]] = []
        self.clears: list[float] = []
        self.heard_at_clear: list[float] = []  # ms of agent audio played when each clear arrived
        self.heard = bytearray()  # agent audio that actually played
        self.protocol_errors: list[str] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.ended_reason: str | None = None
        self.ended_at: float | None = None  # when Twilio ended the stream (its `stop` may not reach a closed socket)
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- connection ---------------------------------------------------------------------------------------
    async def connect(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.ws = await connect(self.url, open_timeout=5, max_size=2**20, user_agent_header="Twilio.TmeWs/1.0")
        self.call.stream = self
        self.call.streams.append(self)
        self._receiver = asyncio.create_task(self._receive())

    async def send_json(self, message: dict[str, Any]) -> None:
        """Any frame, as is (used for malformed and out-of-order frames too)."""
        await self.send_text(json.dumps(message))

    async def send_text(self, text: str) -> None:
        assert self.ws is not None
        async with self._send_lock:
            at = time.monotonic()  # just before the frame goes on the wire
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                return
        with contextlib.suppress(ValueError, RecursionError):
            self.sent.append((at, json.loads(text)))

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def send_connected(self) -> None:
        await self.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def send_start(self, *, call_sid: str | None = None, parameters: dict[str, str] | None = None) -> None:
        await self.send_json({
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "start": {
                "accountSid": self.double.account_sid,
                "streamSid": self.stream_sid,
                "callSid": call_sid or self.call.sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self.parameters if parameters is None else parameters,
            },
            "streamSid": self.stream_sid,
        })
        self._stream_started = time.monotonic()
        self._sender = asyncio.create_task(self._send_media())

    # -- caller audio -------------------------------------------------------------------------------------
    def say(self, audio: bytes) -> asyncio.Future[None]:
        """Queue caller speech; the future resolves when its last frame has been sent."""
        assert self.loop is not None
        done: asyncio.Future[None] = self.loop.create_future()
        self._speech.extend(audio)
        self._speech_done.append((self._sent_speech + len(self._speech), done))
        return done

    async def speak(self, audio: bytes) -> None:
        await self.say(audio)

    async def _send_media(self) -> None:
        """One 20 ms frame per tick on an absolute clock, caller speech when queued and silence otherwise."""
        assert self._stream_started is not None
        frame_index = 0
        try:
            while not self.closed.is_set():
                due = self._stream_started + frame_index * FRAME_MS / 1000
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                frame = bytes(self._speech[:FRAME_BYTES])
                del self._speech[:FRAME_BYTES]
                self._sent_speech += len(frame)
                frame = frame.ljust(FRAME_BYTES, ULAW_SILENCE)
                self._chunk += 1
                await self.send_json({
                    "event": "media",
                    "sequenceNumber": self._next_sequence(),
                    "media": {"track": "inbound", "chunk": str(self._chunk), "timestamp": str(frame_index * FRAME_MS),
                              "payload": base64.b64encode(frame).decode()},
                    "streamSid": self.stream_sid,
                })
                while self._speech_done and self._speech_done[0][0] <= self._sent_speech:
                    _, done = self._speech_done.pop(0)
                    if not done.done():
                        done.set_result(None)
                frame_index += 1
        except ConnectionClosed:
            pass

    async def dtmf(self, digit: str) -> None:
        await self.send_json({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._next_sequence(),
                              "dtmf": {"track": "inbound_track", "digit": digit}})

    async def hang_up(self) -> None:
        """The caller hangs up: Twilio sends `stop` and closes the socket; the call is completed."""
        self.double._end(self.call, "completed", "caller")
        await self.end_from_twilio("caller hung up")
        self.double._status_callback_soon(self.call)

    async def end_from_twilio(self, reason: str) -> None:
        if self.closed.is_set() or self.ws is None:
            return
        self.ended_reason = reason
        self.ended_at = time.monotonic()
        await self.send_json({"event": "stop", "sequenceNumber": self._next_sequence(), "streamSid": self.stream_sid,
                              "stop": {"accountSid": self.double.account_sid, "callSid": self.call.sid}})
        await self.ws.close()
        await self.closed.wait()

    async def close(self) -> None:
        """Drop the socket without a `stop` (a network failure)."""
        if self.ws is not None:
            await self.ws.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 5)

    # -- the app's messages -------------------------------------------------------------------------------
    async def _receive(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.monotonic()
                try:
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        raise ValueError("not an object")
                except ValueError:
                    self.protocol_errors.append(f"not JSON: {raw!r:.80}")
                    continue
                self.received.append(Received(now, message))
                self._handle(now, message)
                self._wake()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            for queued in self._playback:
                if queued.timer is not None:
                    queued.timer.cancel()
            if (self.call.ended is None and self.call.dialed is None and not self.call.carrying_out
                    and self.call.redirecting is None):
                # Twilio carries on after <Connect>: the verbs left play, then the call ends.
                self.call.said_after_stream.extend(self.call.after_stream)
                self.double._end(self.call, "completed", "twiml-after-stream" if self.call.after_stream
                                 else "app-closed-stream")
                self.double._status_callback_soon(self.call)
            self._wake()

    def _handle(self, now: float, message: dict[str, Any]) -> None:
        event = message.get("event")
        if message.get("streamSid") != self.stream_sid:
            self.protocol_errors.append(f"{event}: wrong or missing streamSid")
            return
        if event == "media":
            try:
                audio = base64.b64decode(message["media"]["payload"], validate=True)
            except (KeyError, TypeError, binascii.Error):
                self.protocol_errors.append("media without a valid base64 payload")
                return
            start = max(now, self._playing_until)
            self._playing_until = start + len(audio) / 8000
            self._playback.append(_Queued(start, self._playing_until, audio=audio))
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if not isinstance(name, str) or not name:
                self.protocol_errors.append("mark without a name")
                return
            at = max(now, self._playing_until)
            queued = _Queued(at, at, mark=name)
            assert self.loop is not None
            queued.timer = self.loop.call_at(
                self.loop.time() + (at - now), lambda: self._spawn(self._return_mark(queued))
            )
            self._playback.append(queued)
        elif event == "clear":
            self.clears.append(now)
            self._settle(now, cleared=True)
            self.heard_at_clear.append(len(self.heard) / 8)
        else:
            self.protocol_errors.append(f"unknown event {event!r}")

    def _settle(self, now: float, *, cleared: bool) -> None:
        """Move played audio into `heard`; on clear drop the rest and return its marks at once."""
        pending: list[_Queued] = []
        for queued in self._playback:
            if queued.mark is None:
                if queued.end <= now:
                    self.heard.extend(queued.audio)
                elif queued.start < now:
                    played = int((now - queued.start) * 8000)
                    self.heard.extend(queued.audio[:played])
                    if not cleared:
                        pending.append(_Queued(now, queued.end, audio=queued.audio[played:]))
                elif not cleared:
                    pending.append(queued)
            elif not cleared and queued.start > now:
                pending.append(queued)
        if cleared:
            for queued in self._playback:
                if queued.mark is not None and queued.timer is not None:
                    queued.timer.cancel()
                    self._spawn(self._return_mark(queued))
            self._playing_until = now
        self._playback = pending

    async def _return_mark(self, queued: _Queued) -> None:
        if queued.timer is None:  # already returned (a clear raced the timer)
            return
        queued.timer = None
        name = queued.mark or ""
        self._settle(time.monotonic(), cleared=False)
        self.marks_returned.append((time.monotonic(), name))
        await self.send_json({"event": "mark", "sequenceNumber": self._next_sequence(), "streamSid": self.stream_sid,
                              "mark": {"name": name}})
        self._wake()

    # -- waiting in tests ---------------------------------------------------------------------------------
    def _wake(self) -> None:
        for predicate, future in list(self._waiters):
            if not future.done() and predicate():
                future.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        assert self.loop is not None
        if predicate():
            return
        future: asyncio.Future[None] = self.loop.create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._waiters.remove(entry)

    def agent_audio(self) -> bytes:
        """Every byte of agent audio received (played or not)."""
        return b"".join(base64.b64decode(r.message["media"]["payload"]) for r in self.received
                        if r.message.get("event") == "media")

    def events(self, name: str) -> list[Received]:
        return [r for r in self.received if r.message.get("event") == name]

    @property
    def playing(self) -> bool:
        return time.monotonic() < self._playing_until

    def played_ms(self) -> float:
        self._settle(time.monotonic(), cleared=False)
        return len(self.heard) / 8
