"""A local stand-in for OpenAI GPT-Live over its primary WebSocket (`GET /v1/live/sessions`), for tests.

Served by the OpenAI double's aiohttp server (same port, same API key), so the app reaches it only through
`OPENAI_BASE_URL`, with the real SDK's `client.live.connect()`.

To the letter of the installed SDK's types: every event this double sends is validated against
`openai.types.live.ServerEvent` (required fields, literal values, and no key the type does not have) before
it goes on the wire, and every client event it receives is validated against `ClientEventParam` (a
TypedDict union: required keys, e.g. `delegation_id` which is required-but-nullable, and no unknown keys).
A client event that fails is answered with an `error` event and kept in `LiveSessionLog.protocol_errors`,
so tests can assert there were none.

Behaviour (modelled on the Live docs; documented so tests can rely on it):

* The client sends `session.start` first. With `double.live.refuse(code)` queued, or `double.refuse_live`
  set, the session is refused: an `error` event (e.g. `model_not_enabled`) and the socket closes (1008).
  Otherwise `session.started` with the resolved session (id, expires_at, model, status, audio, delegation).
* Audio in: an energy VAD (as the Realtime double's: 20 ms frames, RMS > 500 for >= 60 ms; ends after
  500 ms quiet). Speech starting while the model speaks stops the model (Live's own barge-in). The next
  scripted caller line is streamed as `session.input_transcript.delta` fragments while the caller speaks
  (a word each 250 ms, the rest when speech ends); then the next agent step runs: `say(text)` speaks;
  `delegate(say_first)` speaks the filler (if any) while it
  sends `session.delegation.created {delegation{id, target:"client"}}` and waits for the app's
  `session.commentary.append` for that delegation, after which the next agent step runs
  (`say_from_commentary()` speaks the commentary's content).
* `session.commentary.append` with `delegation_id: null` (the app asking the model to say something, e.g.
  the greeting) runs the next agent step too; an unknown or already-answered delegation id is an error.
  Each accepted commentary is acknowledged with `session.commentary.appended`.
* Speech: `session.output_transcript.delta` fragments and `session.output_audio.delta` chunks of 50 ms in
  the session's format (a tone the VAD hears as speech), 60 ms per character, paced in real time but sent
  up to `AUDIO_LEAD_MS` ahead (so a client holds queued audio, as with the real service).
* `session.usage.updated {usage{seconds}}` (cumulative whole seconds since start, the WebSocket form: no
  active/paused breakdown) after every utterance; `session.close` -> `session.closed` (reason
  `close_requested`, final usage) and the socket closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import math
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from openai.types.live import ClientEventParam, ServerEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

from tests.doubles.openai_double import (
    DELTA_MS,
    PCM24K,
    PCMU,
    AudioFormat,
    EnergyVad,
    EventLog,
    new_id,
    speech_like_tone,
    split_for_deltas,
    spoken_ms,
)

if TYPE_CHECKING:
    from tests.doubles.openai_double import OpenAIDouble

JSON = dict[str, Any]

LIVE_VAD_THRESHOLD_RMS = 500.0
LIVE_SILENCE_MS = 500
#: the caller's words stream one per this many ms while they speak
CALLER_WORD_MS = 250
#: how far ahead of real time the model's audio is sent (generation outpaces playback; the client queues it)
AUDIO_LEAD_MS = 600
SESSION_SECONDS = 60 * 60
REFUSED_MESSAGE = "GPT-Live is not enabled for this project."

def _client_event_types() -> dict[str, TypeAdapter[Any]]:
    """One adapter per client event type, keyed by its `type` literal (the union's error for a wrong event
    would describe every member)."""
    adapters: dict[str, TypeAdapter[Any]] = {}
    for member in typing.get_args(ClientEventParam):
        literal = typing.get_type_hints(member, include_extras=False)["type"]
        for value in typing.get_args(literal):
            adapters[value] = TypeAdapter(member)
    return adapters


_CLIENT_EVENTS = _client_event_types()
_SERVER_EVENTS: TypeAdapter[Any] = TypeAdapter(ServerEvent)


def _extras(model: Any, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}{key}" for key in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += _extras(getattr(model, name), f"{path}{name}.")
    elif isinstance(model, list):
        for index, value in enumerate(model):
            found += _extras(value, f"{path}{index}.")
    return found


def with_event_id(event: JSON) -> JSON:
    """The event with a fresh `event_id` when its type has one (audio deltas on the primary socket don't)."""
    candidate = {"event_id": new_id("event"), **event}
    model = _SERVER_EVENTS.validate_python(candidate)
    return candidate if "event_id" in type(model).model_fields else event


def check_server_event(event: JSON) -> None:
    """Raise if `event` is not a server event of the installed SDK, exactly."""
    model = _SERVER_EVENTS.validate_python(event)
    extras = _extras(model)
    if extras:
        raise ValueError(f"{event.get('type')}: keys the SDK's type does not have: {extras}")


def client_event_problem(event: JSON) -> str | None:
    """Why `event` is not a client event of the installed SDK (None when it is, exactly)."""
    adapter = _CLIENT_EVENTS.get(str(event.get("type")))
    if adapter is None:
        return f"{event.get('type')!r} is not a Live client event type"
    try:
        validated = adapter.validate_python(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"invalid {event.get('type')!r}: {first['msg']} at {'.'.join(str(p) for p in first['loc'])}"
    if validated != event:  # a TypedDict drops keys it does not declare
        return f"{event.get('type')!r} has keys the SDK's type does not have"
    return None


# -- script -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveCaller:
    transcript: str


@dataclass(frozen=True)
class LiveSay:
    text: str


@dataclass(frozen=True)
class LiveSayFromCommentary:
    pass


@dataclass(frozen=True)
class LiveDelegate:
    say_first: str | None = None


LiveAgentStep = LiveSay | LiveSayFromCommentary | LiveDelegate


class LiveScript:
    """What the fake live model hears and says next; caller lines and agent steps are taken separately (as
    in the Realtime double). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[LiveCaller | LiveAgentStep] = []
        self._refusals: list[str] = []

    def caller(self, transcript: str) -> LiveScript:
        return self._add(LiveCaller(transcript))

    def say(self, text: str) -> LiveScript:
        return self._add(LiveSay(text))

    def say_from_commentary(self) -> LiveScript:
        return self._add(LiveSayFromCommentary())

    def delegate(self, say_first: str | None = None) -> LiveScript:
        return self._add(LiveDelegate(say_first))

    def refuse(self, code: str = "model_not_enabled") -> LiveScript:
        with self._lock:
            self._refusals.append(code)
        return self

    @property
    def pending(self) -> list[Any]:
        with self._lock:
            return list(self._steps)

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()
            self._refusals.clear()

    def _add(self, step: LiveCaller | LiveAgentStep) -> LiveScript:
        with self._lock:
            self._steps.append(step)
        return self

    def _take(self, kinds: tuple[type, ...]) -> Any:
        with self._lock:
            for index, step in enumerate(self._steps):
                if isinstance(step, kinds):
                    return self._steps.pop(index)
        return None

    def _next_refusal(self) -> str | None:
        with self._lock:
            return self._refusals.pop(0) if self._refusals else None


# -- log ----------------------------------------------------------------------------------------------------
@dataclass
class LiveSessionLog(EventLog):
    headers: dict[str, str]
    id: str = field(default_factory=lambda: new_id("sess"))
    received: list[JSON] = field(default_factory=list)
    sent: list[JSON] = field(default_factory=list)
    session: JSON = field(default_factory=dict)
    protocol_errors: list[str] = field(default_factory=list)
    input_audio_bytes: int = 0
    interruptions: int = 0
    refused: bool = False
    closed: threading.Event = field(default_factory=threading.Event)
    sent_at: list[float] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)


# -- one connection -----------------------------------------------------------------------------------------
class LiveConnection:
    def __init__(self, ws: web.WebSocketResponse, log: LiveSessionLog, script: LiveScript,
                 refuse: Callable[[], str | None]) -> None:
        self.ws = ws
        self.log = log
        self.script = script
        self._refuse = refuse
        self.loop = asyncio.get_running_loop()
        self.started_at: float | None = None
        self.session: JSON | None = None
        self.fmt: AudioFormat = PCM24K
        self.vad: EnergyVad | None = None
        self.input_ms = 0.0
        self.closing = False
        self.speaking: asyncio.Task[None] | None = None
        self.open_delegations: dict[str, asyncio.Future[str]] = {}
        self._send_lock = asyncio.Lock()
        self._turns: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()

    def offset_ms(self) -> int:
        return 0 if self.started_at is None else int((self.loop.time() - self.started_at) * 1000)

    async def emit(self, event: JSON) -> None:
        if self.closing or self.ws.closed:
            return
        event = with_event_id(event)
        check_server_event(event)  # a double that breaks the protocol fails loudly, here
        async with self._send_lock:
            self.log._record(self.log.sent, event)
            try:
                await self.ws.send_str(json.dumps(event))
            except ConnectionError:
                self.closing = True

    async def emit_error(self, code: str, message: str, client_event: JSON | None = None,
                         param: str | None = None) -> None:
        error: JSON = {"type": "invalid_request_error", "code": code, "message": message}
        if param:
            error["param"] = param
        if client_event and client_event.get("event_id"):
            error["client_event_id"] = client_event["event_id"]
        await self.emit({"type": "error", "error": error})

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def run(self) -> None:
        self._spawn(self._turn_loop())
        try:
            async for message in self.ws:
                if message.type != WSMsgType.TEXT:
                    break
                await self._dispatch(message.data)
        finally:
            self.closing = True
            for task in list(self._tasks):
                task.cancel()
            self.log.closed.set()

    async def _dispatch(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            self.log.protocol_errors.append("a frame that is not JSON")
            await self.emit_error("invalid_json", "The message is not valid JSON.")
            return
        self.log._record(self.log.received, event)
        problem = client_event_problem(event) if isinstance(event, dict) else "not a JSON object"
        if problem is not None:
            self.log.protocol_errors.append(problem)
            await self.emit_error("invalid_event", problem, event if isinstance(event, dict) else None)
            return
        kind = event["type"]
        if self.session is None and kind != "session.start":
            self.log.protocol_errors.append(f"{kind} before session.start")
            await self.emit_error("session_not_started", "Send session.start first.", event)
            return
        handler = self._handlers.get(kind)
        if handler is None:
            await self.emit_error("unsupported_event", f"{kind} is not supported on this session.", event)
            return
        await handler(self, event)

    # -- client events ------------------------------------------------------------------------------------
    async def _on_start(self, event: JSON) -> None:
        if self.session is not None:
            await self.emit_error("session_already_started", "session.start was already sent.", event)
            return
        code = self._refuse()
        if code is not None:
            self.log.refused = True
            await self.emit_error(code, REFUSED_MESSAGE, event)
            self.closing = True
            await self.ws.close(code=1008, message=b"refused")
            return
        config = event["session"]
        audio_format = (config.get("audio") or {}).get("format") or {"type": "audio/pcm", "rate": 24000}
        if audio_format.get("type") == "audio/pcmu":
            if audio_format.get("rate") != 8000:
                await self.emit_error("invalid_value", "G.711 audio uses 8000 Hz.", event, "session.audio.format.rate")
                return
            self.fmt = PCMU
        elif audio_format.get("type") == "audio/pcm" and audio_format.get("rate") == 24000:
            self.fmt = PCM24K
        else:
            # The 16 kHz form exists in the API; this double speaks only what the service uses.
            await self.emit_error("unsupported_value", "This double serves audio/pcm at 24 kHz and audio/pcmu.",
                                  event, "session.audio.format")
            return
        self.started_at = self.loop.time()
        self.session = {
            "id": self.log.id,
            "expires_at": int(time.time()) + SESSION_SECONDS,
            "model": config["model"],
            "status": "active",
            "audio": {"format": copy.deepcopy(audio_format),
                      "output": {"voice": ((config.get("audio") or {}).get("output") or {}).get("voice", "marin")}},
            "delegation": copy.deepcopy(config.get("delegation") or {"type": "client"}),
            "instructions": config.get("instructions"),
        }
        self.log.session = copy.deepcopy(self.session)
        self.vad = EnergyVad(self.fmt, offset_ms=0, threshold_rms=LIVE_VAD_THRESHOLD_RMS,
                             silence_ms=LIVE_SILENCE_MS)
        await self.emit({"type": "session.started", "session": copy.deepcopy(self.session),
                         **self._client_ref(event)})

    async def _on_update(self, event: JSON) -> None:
        assert self.session is not None
        await self.emit({"type": "session.updated", "session": copy.deepcopy(self.session), **self._client_ref(event)})

    async def _on_audio(self, event: JSON) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            await self.emit_error("invalid_value", "Expected base64-encoded audio.", event, "audio")
            return
        self.log.input_audio_bytes += len(data)
        self.input_ms += len(data) / self.fmt.bytes_per_ms
        assert self.vad is not None
        for edge in self.vad.feed(data):
            if edge.kind == "start" and self.speaking is not None and not self.speaking.done():
                self.log.interruptions += 1
                self.speaking.cancel()  # Live's own barge-in: it stops talking when the caller does
            self._turns.put_nowait(edge.kind)

    async def _on_commentary(self, event: JSON) -> None:
        delegation_id = event.get("delegation_id")
        if delegation_id is not None:
            waiting = self.open_delegations.pop(delegation_id, None)
            if waiting is None:
                self.log.protocol_errors.append(f"commentary for unknown delegation {delegation_id}")
                await self.emit_error("unknown_delegation", f"No open client delegation {delegation_id}.", event,
                                      "delegation_id")
                return
        at = self.offset_ms()
        await self.emit({"type": "session.commentary.appended", "start_ms": at, "end_ms": at,
                         **self._client_ref(event)})
        if delegation_id is not None:
            waiting.set_result(str(event["content"]))
        else:
            self._spawn(self._agent_turn(str(event["content"])))

    async def _on_thinking(self, event: JSON) -> None:
        at = self.offset_ms()
        await self.emit({"type": "session.thinking.appended", "start_ms": at, "end_ms": at, **self._client_ref(event)})

    async def _on_instructions(self, event: JSON) -> None:
        at = self.offset_ms()
        await self.emit({"type": "session.instructions.appended", "start_ms": at, "end_ms": at,
                         **self._client_ref(event)})

    async def _on_close(self, event: JSON) -> None:
        assert self.session is not None
        if self.speaking is not None:
            self.speaking.cancel()
        await self.emit({"type": "session.closed", "reason": "close_requested", "session": copy.deepcopy(self.session),
                         "usage": self._usage(), **self._client_ref(event)})
        self.closing = True
        await self.ws.close(code=1000, message=b"closed")

    _handlers: dict[str, Callable[[LiveConnection, JSON], Any]] = {
        "session.start": _on_start,
        "session.update": _on_update,
        "session.input_audio.append": _on_audio,
        "session.commentary.append": _on_commentary,
        "session.thinking.append": _on_thinking,
        "session.instructions.append": _on_instructions,
        "session.close": _on_close,
    }

    @staticmethod
    def _client_ref(event: JSON) -> JSON:
        return {"client_event_id": event["event_id"]} if event.get("event_id") else {}

    def _usage(self) -> JSON:
        seconds = 0 if self.started_at is None else math.floor(self.loop.time() - self.started_at)
        return {"seconds": seconds}

    # -- the model ----------------------------------------------------------------------------------------
    async def _turn_loop(self) -> None:
        """Caller turns in order: the caller's words stream as they speak (a word every
        `CALLER_WORD_MS` while speech lasts, the rest when it ends), then what the model does about them."""
        words: list[str] = []
        ticker: asyncio.Task[None] | None = None

        async def tick() -> None:
            while words:
                at = self.offset_ms()
                await self._caller_fragment(words.pop(0) + " ", at, at + CALLER_WORD_MS)
                await asyncio.sleep(CALLER_WORD_MS / 1000)

        while True:
            edge = await self._turns.get()
            if edge == "start":
                line = self.script._take((LiveCaller,))
                words = (line.transcript if isinstance(line, LiveCaller) else "(inaudible)").split()
                ticker = asyncio.ensure_future(tick())
                continue
            if ticker is not None:
                ticker.cancel()
            if words:
                at = self.offset_ms()
                await self._caller_fragment(" ".join(words), at, at)
                words = []
            await self._agent_turn(None)

    async def _caller_fragment(self, piece: str, start_ms: int, end_ms: int) -> None:
        await self.emit({"type": "session.input_transcript.delta", "delta": piece, "start_ms": start_ms,
                         "end_ms": end_ms})

    async def _agent_turn(self, commentary: str | None) -> None:
        step = self.script._take((LiveSay, LiveSayFromCommentary, LiveDelegate))
        if step is None:
            step = LiveSay(commentary) if commentary else LiveSay("Okay.")
        if isinstance(step, LiveSay):
            await self._speak(step.text)
        elif isinstance(step, LiveSayFromCommentary):
            await self._speak(commentary or "Okay.")
        else:
            delegation_id = new_id("deleg")
            answered: asyncio.Future[str] = self.loop.create_future()
            self.open_delegations[delegation_id] = answered
            await self.emit({"type": "session.delegation.created", "offset_ms": self.offset_ms(),
                             "delegation": {"id": delegation_id, "target": "client", "type": "delegation"}})
            if step.say_first:
                await self._speak(step.say_first)  # the model keeps the caller company meanwhile
            content = await answered
            if self.speaking is not None and not self.speaking.done():
                await asyncio.wait({self.speaking})
            await self._agent_turn(content)

    async def _speak(self, text: str) -> None:
        if self.speaking is not None and not self.speaking.done():
            await asyncio.wait({self.speaking})
        self.speaking = asyncio.ensure_future(self._stream(text))
        await asyncio.wait({self.speaking})

    async def _stream(self, text: str) -> None:
        audio = speech_like_tone(spoken_ms(text), self.fmt)
        chunk_bytes = DELTA_MS * self.fmt.bytes_per_ms
        chunks = [audio[i : i + chunk_bytes] for i in range(0, len(audio), chunk_bytes)]
        pieces = split_for_deltas(text, len(chunks))
        began = self.loop.time()
        try:
            for index, (chunk, piece) in enumerate(zip(chunks, pieces, strict=True)):
                due = began + (index * DELTA_MS - AUDIO_LEAD_MS) / 1000
                await asyncio.sleep(max(0.0, due - self.loop.time()))
                at = self.offset_ms()
                if piece:
                    await self.emit({"type": "session.output_transcript.delta", "delta": piece, "start_ms": at,
                                     "end_ms": at + DELTA_MS})
                await self.emit({"type": "session.output_audio.delta",
                                 "delta": base64.b64encode(chunk).decode("ascii")})
        finally:
            if not self.closing:
                self._spawn(self.emit({"type": "session.usage.updated", "usage": self._usage()}))


async def serve_live(double: OpenAIDouble, request: web.Request) -> web.StreamResponse:
    """`GET /v1/live/sessions` on the OpenAI double: the primary WebSocket of one Live session."""
    if not double._authorized(request):
        return double._unauthorized(request)
    ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024, timeout=2.0, compress=False)
    if not ws.can_prepare(request).ok:
        return web.json_response({"error": {"message": "Expected a WebSocket upgrade.", "type":
                                            "invalid_request_error", "code": None, "param": None}}, status=400)
    await ws.prepare(request)
    log = LiveSessionLog(headers=dict(request.headers))
    with double._sessions_changed:
        double.live_sessions.append(log)
        double._sessions_changed.notify_all()

    def refuse() -> str | None:
        return double.live._next_refusal() or double.refuse_live

    await LiveConnection(ws, log, double.live, refuse).run()
    return ws


def wait_for_live_session(double: OpenAIDouble, index: int = 0, timeout: float = 5.0) -> LiveSessionLog:
    with double._sessions_changed:
        if not double._sessions_changed.wait_for(lambda: len(double.live_sessions) > index, timeout=timeout):
            raise TimeoutError(f"no live session #{index} within {timeout}s")
        return double.live_sessions[index]
