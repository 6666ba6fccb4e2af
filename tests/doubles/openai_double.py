"""A local stand-in for the OpenAI API (Realtime GA over WebSocket + Responses over HTTP), for tests.

The app reaches it only through configuration: ``OPENAI_BASE_URL=double.base_url`` and
``OPENAI_API_KEY=test-key``, through the real ``openai`` SDK. One aiohttp server on 127.0.0.1 serves
``GET /v1/realtime?model=…`` (WebSocket) and ``POST /v1/responses``, in a background thread with its
own event loop, so sync (Playwright) and async tests can both drive it.

Shared contract (see the spec in the brief; names are fixed)::

    double = OpenAIDouble(api_key="test-key")   # .start() / .stop(); also a context manager
    double.base_url             # "http://127.0.0.1:PORT/v1"
    double.realtime             # RealtimeScript: caller(), say(), say_from_tool_output(), tool(), expire_after()
    double.responses            # ResponsesScript: for_model(m).function_call(), .text(), .delay(), .error()
    double.realtime_sessions    # list[RealtimeSessionLog], one per accepted WebSocket, in order
    double.response_requests    # list[dict], every POST /v1/responses JSON body, in order
    double.reset()              # clear scripts and logs (and fail_realtime_connect) between tests
    double.fail_realtime_connect = False   # True: the WebSocket upgrade answers HTTP 500
    double.refuse_connects = N             # the next N WebSocket upgrades answer HTTP 503
    double.realtime.say(text, drop_after_ms=M)   # the socket is cut M ms into that answer's audio

Behaviour beyond the spec's letter, chosen to match the real API (documented so callers can rely on it):

* Script steps: agent steps (``say``/``tool``/``say_from_tool_output``) and ``caller`` lines share one
  ordered list, but a response takes the first *agent* step and an utterance the first *caller* line, so
  ``caller(a).say(b).caller(c).say(d)`` and ``caller(a).caller(c).say(b).say(d)`` behave the same.
* VAD: 20 ms frames, speech when RMS > ``1000 * turn_detection.threshold`` (default 0.5 → 500) for
  ≥ 60 ms; it ends after ``silence_duration_ms`` (default 500) of quiet. ``semantic_vad`` uses the same
  detector with silence of 800/500/250 ms for eagerness low/medium|auto/high. ``turn_detection: null``
  turns VAD off (commit by hand). ``audio_start_ms`` includes ``prefix_padding_ms`` (default 300) the way
  the real API reports it; ``audio_end_ms`` is the input position when the silence ran out.
* ``conversation.item.input_audio_transcription.completed`` is sent only when the session has
  ``audio.input.transcription`` configured (the real API sends no transcripts otherwise); the caller
  line is consumed either way.
* ``interrupt_response`` (default true): speech starting while a response is active cancels it
  (``response.done`` status "cancelled", reason "turn_detected"), as the real server does. A
  ``response.cancel`` that arrives after that gets ``response_cancel_not_active``.
* A second ``response.create`` while one is active → ``error`` code
  ``conversation_already_has_active_response``. When VAD ends a turn while a response is still active
  (``interrupt_response: false``), the auto-response starts when the active one finishes.
* Every response runs the real GA event sequence, including ``conversation.item.added/done`` for its
  output items and ``rate_limits.updated`` after ``response.done``. ``response.create`` honours
  ``response.output_modalities`` (``["text"]`` gives ``response.output_text.*``), ``conversation: "none"``
  (out-of-band: output not added to the conversation) and ``metadata``.
* ``session.update`` requires ``session.type == "realtime"`` and rejects parameters the GA session
  does not have (e.g. beta ``input_audio_format``) and formats other than ``audio/pcm`` (24 kHz) /
  ``audio/pcmu`` with an ``error`` event, like the real API. Nested objects merge; an object that
  carries a ``type`` (format, turn_detection) replaces the old one whole, and ``session.updated`` shows
  it with the server's defaults filled in.
* ``conversation.item.create`` checks what the GA API checks: required fields per item type, message
  content types per role (assistant: ``output_text``/``output_audio``; user: ``input_text``/``input_audio``/
  ``input_image``; system: ``input_text``) and duplicate ids.
* Also handled: ``conversation.item.delete`` → ``conversation.item.deleted``, ``conversation.item.retrieve``
  → ``conversation.item.retrieved``; ``input_audio_buffer.commit`` with < 100 ms buffered →
  ``input_audio_buffer_commit_empty``. Not emitted: ``idle_timeout_ms`` timeouts, logprobs, audio/pcma.
* ``double.realtime.expire_after(seconds, once=False)``: every session (open or later) gets
  ``error`` code ``session_expired`` ``seconds`` after it connected, then the socket closes (1000).
  ``once=True`` expires just the first session that reaches its deadline. ``expire_after(None)`` turns it off.
* Responses: ``.delay(s)`` applies to the next reply step of that model (several add up), so
  ``.delay(3).text("x")`` is one request. ``.error(status, message=None)`` answers with an OpenAI-shaped
  error body; note the SDK retries 408/409/429/5xx by itself (``max_retries``, default 2), and each
  retry is a request that takes the next step. ``stream: true`` is refused with 400, and so is an
  ``input`` whose ``function_call_output`` has no ``function_call`` with its ``call_id`` before it
  (unless ``previous_response_id`` is given), as the real API refuses it.
* Summary default: when a model's script is empty and the request's ``instructions`` or ``input``
  mention "summar", the reply is ``"Summary: " + first caller line``, where the first caller line is
  the first text line of the input starting with ``Caller:``/``User:``/``Customer:`` (prefix removed),
  else the first line of the first ``user`` message that does not mention "summar", else
  ``"(no caller speech)"``. Other empty-script requests get the text ``"Okay."``.

Log helpers (additions): ``RealtimeSessionLog.wait_for_sent(type, timeout=5.0, count=1)`` /
``wait_for_received(...)`` block until the count-th such event exists and return it;
``RealtimeSessionLog.sent_of_type(type)`` / ``received_of_type(type)``; ``.truncations`` (every
``conversation.item.truncate`` received); ``.model``, ``.headers``, ``.id``; ``.sent_at`` /
``.received_at`` (``time.monotonic()`` of each ``sent`` / ``received`` entry, index for index);
``OpenAIDouble.wait_for_session(index=0, timeout=5.0)``; ``OpenAIDouble.port``;
``RealtimeScript.caller(text, language="es")``: with a language-detecting transcription model
(``gpt-transcribe``, ``gpt-live-transcribe``) the completed transcription carries ``languages: [{"code": "es"}]``
(``[]`` for a line without one), as the GA event does;
``RealtimeScript.pending`` / ``ModelScript.pending`` (steps not yet consumed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from aiohttp import WSMsgType, web
from openai.types.realtime import (
    RealtimeAudioConfigInput,
    RealtimeAudioConfigOutput,
    RealtimeSessionCreateRequest,
)

from tests.support.threaded_site import OnThreadedSite, ThreadedSite

JSON = dict[str, Any]

VAD_FRAME_MS = 20
DELTA_MS = 50
AUDIO_MS_PER_CHAR = 60
MIN_SPOKEN_MS = 300
MIN_SPEECH_MS = 60
MIN_COMMIT_MS = 100
DEFAULT_SILENCE_MS = 500
DEFAULT_PREFIX_PADDING_MS = 300
DEFAULT_VAD_THRESHOLD = 0.5
TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")
SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 250}
DEFAULT_REPLY = "Okay."
#: transcription models whose completed events carry the detected `languages`
LANGUAGE_DETECTING_TRANSCRIBERS = ("gpt-transcribe", "gpt-live-transcribe")
INAUDIBLE = "(inaudible)"
SESSION_EXPIRED_MESSAGE = "Your session hit the maximum duration of 60 minutes."

_ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


# ---------------------------------------------------------------------------------------------
# Audio: formats, G.711 mu-law, the spoken tone
# ---------------------------------------------------------------------------------------------

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635


def _build_mulaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(inverted & 0x80, -magnitude, magnitude).astype(np.int16)


_MULAW_TABLE = _build_mulaw_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    return _MULAW_TABLE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(samples: np.ndarray) -> bytes:
    values = samples.astype(np.int32)
    sign = (values < 0).astype(np.int32)
    magnitude = np.minimum(np.abs(values), _MULAW_CLIP) + _MULAW_BIAS
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


@dataclass(frozen=True)
class AudioFormat:
    kind: Literal["audio/pcmu", "audio/pcm"]
    sample_rate: int
    bytes_per_ms: int

    @classmethod
    def from_config(cls, config: JSON | None) -> AudioFormat:
        # The GA default for both directions is PCM16 at 24 kHz.
        if config and config.get("type") == "audio/pcmu":
            return PCMU
        return PCM24K

    def decode(self, data: bytes) -> np.ndarray:
        if self.kind == "audio/pcmu":
            return mulaw_decode(data)
        usable = len(data) - len(data) % 2
        return np.frombuffer(data[:usable], dtype="<i2")

    def encode(self, samples: np.ndarray) -> bytes:
        if self.kind == "audio/pcmu":
            return mulaw_encode(samples)
        return samples.astype("<i2").tobytes()


PCMU = AudioFormat("audio/pcmu", 8000, 8)
PCM24K = AudioFormat("audio/pcm", 24000, 48)


def spoken_ms(text: str) -> int:
    return max(MIN_SPOKEN_MS, AUDIO_MS_PER_CHAR * len(text))


def speech_like_tone(duration_ms: int, fmt: AudioFormat) -> bytes:
    """A 220 Hz tone with a 4 Hz syllable-like envelope: loud enough to trip any energy VAD."""
    count = fmt.sample_rate * duration_ms // 1000
    t = np.arange(count) / fmt.sample_rate
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    samples = 9000 * envelope * np.sin(2 * np.pi * 220 * t)
    return fmt.encode(samples.astype(np.int16))


# ---------------------------------------------------------------------------------------------
# Voice activity detection on the appended audio
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VadEdge:
    kind: Literal["start", "stop"]
    at_ms: int


class EnergyVad:
    """Frame-energy VAD: speech after MIN_SPEECH_MS of loud frames, end after silence_ms of quiet."""

    def __init__(self, fmt: AudioFormat, *, offset_ms: int, threshold_rms: float, silence_ms: int) -> None:
        self.fmt = fmt
        self.threshold_rms = threshold_rms
        self.silence_ms = silence_ms
        self.in_speech = False
        self._frame_bytes = fmt.bytes_per_ms * VAD_FRAME_MS
        self._pending = b""
        self._position_ms = offset_ms
        self._loud_run_ms = 0
        self._quiet_run_ms = 0
        self._candidate_start_ms = offset_ms

    def feed(self, data: bytes) -> list[VadEdge]:
        buffer = self._pending + data
        whole = len(buffer) - len(buffer) % self._frame_bytes
        self._pending = buffer[whole:]
        if not whole:
            return []
        samples = self.fmt.decode(buffer[:whole]).astype(np.float64)
        frames = samples.reshape(-1, self.fmt.sample_rate * VAD_FRAME_MS // 1000)
        rms = np.sqrt(np.mean(frames * frames, axis=1))
        edges: list[VadEdge] = []
        for energy in rms:
            frame_start = self._position_ms
            self._position_ms += VAD_FRAME_MS
            loud = bool(energy > self.threshold_rms)
            if not self.in_speech:
                if not loud:
                    self._loud_run_ms = 0
                    continue
                if self._loud_run_ms == 0:
                    self._candidate_start_ms = frame_start
                self._loud_run_ms += VAD_FRAME_MS
                if self._loud_run_ms >= MIN_SPEECH_MS:
                    self.in_speech = True
                    self._quiet_run_ms = 0
                    edges.append(VadEdge("start", self._candidate_start_ms))
            elif loud:
                self._quiet_run_ms = 0
            else:
                self._quiet_run_ms += VAD_FRAME_MS
                if self._quiet_run_ms >= self.silence_ms:
                    self.in_speech = False
                    self._loud_run_ms = 0
                    edges.append(VadEdge("stop", self._position_ms))
        return edges


# ---------------------------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerLine:
    transcript: str
    #: ISO-639-1 code the transcription reports in `languages` (only models that detect it do: see below)
    language: str | None = None


@dataclass(frozen=True)
class Say:
    text: str
    #: drop the WebSocket (no close frame, no response.done) once this much of the answer's audio is out
    drop_after_ms: int | None = None


@dataclass(frozen=True)
class SayFromToolOutput:
    pass


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: JSON
    say_first: str | None = None


AgentStep = Say | SayFromToolOutput | ToolCall
RealtimeStep = CallerLine | AgentStep


class RealtimeScript:
    """What the fake model says and hears next. Thread-safe: tests add steps while the server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: list[RealtimeStep] = []
        self._expire_seconds: float | None = None
        self._expire_once = False
        self._listeners: list[Callable[[], None]] = []

    def caller(self, transcript: str, *, language: str | None = None) -> RealtimeScript:
        """The caller's next utterance is transcribed as `transcript`; `language` is the language the
        transcription reports for it (GA `languages: [{"code": …}]`), sent only when the session's
        transcription model is one that detects languages (gpt-transcribe, gpt-live-transcribe)."""
        return self._add(CallerLine(transcript, language))

    def say(self, text: str, *, drop_after_ms: int | None = None) -> RealtimeScript:
        """The model says `text`; with `drop_after_ms` the connection is lost that far into the answer
        (the socket is cut without a close frame, as a network failure or an OpenAI restart does)."""
        return self._add(Say(text, drop_after_ms))

    def say_from_tool_output(self) -> RealtimeScript:
        return self._add(SayFromToolOutput())

    def tool(self, name: str, arguments: JSON | None = None, say_first: str | None = None) -> RealtimeScript:
        return self._add(ToolCall(name, dict(arguments or {}), say_first))

    def expire_after(self, seconds: float | None, *, once: bool = False) -> RealtimeScript:
        with self._lock:
            self._expire_seconds = seconds
            self._expire_once = once
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self

    @property
    def pending(self) -> list[RealtimeStep]:
        with self._lock:
            return list(self._steps)

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()
            self._expire_seconds = None
            self._expire_once = False

    def _add(self, step: RealtimeStep) -> RealtimeScript:
        with self._lock:
            self._steps.append(step)
        return self

    def _take(self, kinds: tuple[type, ...]) -> RealtimeStep | None:
        with self._lock:
            for index, step in enumerate(self._steps):
                if isinstance(step, kinds):
                    return self._steps.pop(index)
        return None

    def _next_agent_step(self) -> AgentStep | None:
        step = self._take((Say, SayFromToolOutput, ToolCall))
        return None if isinstance(step, CallerLine) else step

    def _next_caller_line(self) -> str | None:
        line = self._next_caller_step()
        return line.transcript if line is not None else None

    def _next_caller_step(self) -> CallerLine | None:
        step = self._take((CallerLine,))
        return step if isinstance(step, CallerLine) else None

    def _expiry(self) -> float | None:
        with self._lock:
            return self._expire_seconds

    def _claim_expiry(self) -> bool:
        """Whether a session that reached its deadline may expire now (once=True lets just one)."""
        with self._lock:
            if self._expire_seconds is None:
                return False
            if self._expire_once:
                self._expire_seconds = None
                self._expire_once = False
            return True

    def _subscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def _unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)


@dataclass(frozen=True)
class FunctionCallReply:
    name: str
    arguments: JSON


@dataclass(frozen=True)
class TextReply:
    text: str


@dataclass(frozen=True)
class DelayStep:
    seconds: float


@dataclass(frozen=True)
class ErrorReply:
    status: int
    message: str | None = None


ResponsesStep = FunctionCallReply | TextReply | DelayStep | ErrorReply
ResponsesReply = FunctionCallReply | TextReply | ErrorReply


class ModelScript:
    """The replies one model gives, one per request, in order."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._steps: list[ResponsesStep] = []

    def function_call(self, name: str, arguments: JSON | None = None) -> ModelScript:
        return self._add(FunctionCallReply(name, dict(arguments or {})))

    def text(self, text: str) -> ModelScript:
        return self._add(TextReply(text))

    def delay(self, seconds: float) -> ModelScript:
        return self._add(DelayStep(seconds))

    def error(self, status: int = 500, message: str | None = None) -> ModelScript:
        return self._add(ErrorReply(status, message))

    @property
    def pending(self) -> list[ResponsesStep]:
        with self._lock:
            return list(self._steps)

    def _add(self, step: ResponsesStep) -> ModelScript:
        with self._lock:
            self._steps.append(step)
        return self

    def _take(self) -> tuple[float, ResponsesReply | None]:
        delay = 0.0
        with self._lock:
            while self._steps:
                step = self._steps.pop(0)
                if isinstance(step, DelayStep):
                    delay += step.seconds
                    continue
                return delay, step
        return delay, None


class ResponsesScript:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, ModelScript] = {}

    def for_model(self, model: str) -> ModelScript:
        with self._lock:
            if model not in self._models:
                self._models[model] = ModelScript(self._lock)
            return self._models[model]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------


class EventLog:
    """The events one connection sent and received, with waits on them; a dataclass subclass holds the lists
    (Realtime's session log here, Live's in live_double)."""

    sent: list[JSON]
    received: list[JSON]
    sent_at: list[float]
    received_at: list[float]
    _changed: threading.Condition

    def sent_of_type(self, event_type: str) -> list[JSON]:
        with self._changed:
            return [event for event in self.sent if event.get("type") == event_type]

    def received_of_type(self, event_type: str) -> list[JSON]:
        with self._changed:
            return [event for event in self.received if event.get("type") == event_type]

    def wait_for_sent(self, event_type: str, timeout: float = 5.0, count: int = 1) -> JSON:
        return self._wait(self.sent, event_type, timeout, count)

    def wait_for_received(self, event_type: str, timeout: float = 5.0, count: int = 1) -> JSON:
        return self._wait(self.received, event_type, timeout, count)

    def _wait(self, events: list[JSON], event_type: str, timeout: float, count: int) -> JSON:
        def found() -> JSON | None:
            matches = [event for event in events if event.get("type") == event_type]
            return matches[count - 1] if len(matches) >= count else None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout=timeout):
                seen = [event.get("type") for event in events]
                raise TimeoutError(f"no {count}x {event_type!r} within {timeout}s; saw {seen}")
            result = found()
            assert result is not None
            return result

    def _record(self, events: list[JSON], event: JSON, at: float | None = None) -> None:
        with self._changed:
            (self.sent_at if events is self.sent else self.received_at).append(
                time.monotonic() if at is None else at
            )
            events.append(event)
            self._changed.notify_all()


@dataclass
class RealtimeSessionLog(EventLog):
    id: str
    model: str
    headers: dict[str, str]
    received: list[JSON] = field(default_factory=list)
    sent: list[JSON] = field(default_factory=list)
    session_config: JSON = field(default_factory=dict)
    closed: threading.Event = field(default_factory=threading.Event)
    input_audio_bytes: int = 0
    truncations: list[JSON] = field(default_factory=list)
    dropped: bool = False  # the double cut this connection (RealtimeScript.say(drop_after_ms=…))
    #: time.monotonic() of each entry of `sent` (just before it went on the wire) and of `received`
    #: (when its frame was read), index for index
    sent_at: list[float] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)



# ---------------------------------------------------------------------------------------------
# Realtime protocol
# ---------------------------------------------------------------------------------------------

_SESSION_KEYS = set(RealtimeSessionCreateRequest.model_fields)
_AUDIO_KEYS = {"input", "output"}
_AUDIO_INPUT_KEYS = set(RealtimeAudioConfigInput.model_fields)
_AUDIO_OUTPUT_KEYS = set(RealtimeAudioConfigOutput.model_fields)


class ClientError(Exception):
    """A client event the real API would answer with an ``error`` event."""

    def __init__(
        self, message: str, *, code: str, param: str | None = None, error_type: str = "invalid_request_error"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type


def default_session(session_id: str, model: str) -> JSON:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful assistant.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": int(time.time()) + 3600,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": DEFAULT_VAD_THRESHOLD,
                    "prefix_padding_ms": DEFAULT_PREFIX_PADDING_MS,
                    "silence_duration_ms": DEFAULT_SILENCE_MS,
                    "idle_timeout_ms": None,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
    }


def merge_session(current: JSON, update: JSON) -> JSON:
    merged = copy.deepcopy(current)
    for key, value in update.items():
        old = merged.get(key)
        # A tagged object (format, turn_detection) is a different union member when its type changes,
        # so a partial merge could mix fields of two kinds: replace it whole.
        if isinstance(value, dict) and isinstance(old, dict) and "type" not in value:
            merged[key] = merge_session(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_TURN_DETECTION_DEFAULTS: dict[str, JSON] = {
    "server_vad": {
        "threshold": DEFAULT_VAD_THRESHOLD,
        "prefix_padding_ms": DEFAULT_PREFIX_PADDING_MS,
        "silence_duration_ms": DEFAULT_SILENCE_MS,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    },
    "semantic_vad": {"eagerness": "auto", "create_response": True, "interrupt_response": True},
}


def with_defaults(session: JSON) -> JSON:
    """The session as the server reports it: a replaced format or turn_detection gets its defaults filled in."""
    audio = session.get("audio") or {}
    for direction in ("input", "output"):
        fmt = (audio.get(direction) or {}).get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "audio/pcm":
            fmt.setdefault("rate", 24000)
    detection = (audio.get("input") or {}).get("turn_detection")
    if isinstance(detection, dict):
        for key, value in _TURN_DETECTION_DEFAULTS.get(detection.get("type", ""), {}).items():
            detection.setdefault(key, value)
    return session


def _check_keys(value: Any, allowed: set[str], prefix: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ClientError(f"Invalid type for '{prefix}': expected an object.", code="invalid_type", param=prefix)
    for key in value:
        if key not in allowed:
            raise ClientError(
                f"Unknown parameter: '{prefix}.{key}'.", code="unknown_parameter", param=f"{prefix}.{key}"
            )


def _check_format(value: Any, param: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ClientError(f"Invalid type for '{param}': expected an object.", code="invalid_type", param=param)
    kind = value.get("type")
    if kind == "audio/pcm":
        if value.get("rate", 24000) != 24000:
            raise ClientError(
                f"Invalid value: {value.get('rate')!r}. Supported values are: 24000.",
                code="invalid_value",
                param=f"{param}.rate",
            )
        return
    if kind == "audio/pcmu":
        return
    if kind == "audio/pcma":
        raise ClientError(
            "audio/pcma is not implemented by the test double.", code="unsupported_by_double", param=param
        )
    raise ClientError(
        f"Invalid value: {kind!r}. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
        code="invalid_value",
        param=f"{param}.type",
    )


def validate_session_update(session: Any) -> None:
    if not isinstance(session, dict):
        raise ClientError("Missing required parameter: 'session'.", code="missing_required_parameter", param="session")
    if "type" not in session:
        raise ClientError(
            "Missing required parameter: 'session.type'.", code="missing_required_parameter", param="session.type"
        )
    if session["type"] != "realtime":
        raise ClientError(
            f"Invalid value: {session['type']!r}. This session only accepts 'realtime'.",
            code="invalid_value",
            param="session.type",
        )
    _check_keys(session, _SESSION_KEYS, "session")
    audio = session.get("audio")
    _check_keys(audio, _AUDIO_KEYS, "session.audio")
    if not audio:
        return
    audio_in = audio.get("input")
    audio_out = audio.get("output")
    _check_keys(audio_in, _AUDIO_INPUT_KEYS, "session.audio.input")
    _check_keys(audio_out, _AUDIO_OUTPUT_KEYS, "session.audio.output")
    if audio_in:
        _check_format(audio_in.get("format"), "session.audio.input.format")
        detection = audio_in.get("turn_detection")
        if detection is not None and (
            not isinstance(detection, dict) or detection.get("type") not in TURN_DETECTION_TYPES
        ):
            raise ClientError(
                "Invalid value for 'session.audio.input.turn_detection.type'. Supported values are: "
                "'server_vad' and 'semantic_vad'.",
                code="invalid_value",
                param="session.audio.input.turn_detection.type",
            )
    if audio_out:
        _check_format(audio_out.get("format"), "session.audio.output.format")


# GA content types by role: a replayed assistant turn is output_text, not the beta "text".
MESSAGE_CONTENT_TYPES = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio"),
}


def check_message_content(item: JSON) -> None:
    role = item.get("role")
    allowed = MESSAGE_CONTENT_TYPES.get(str(role))
    if allowed is None:
        raise ClientError(
            f"Invalid value: {role!r}. Supported values are: 'user', 'system', and 'assistant'.",
            code="invalid_value",
            param="item.role",
        )
    content = item.get("content")
    if not isinstance(content, list):
        raise ClientError(
            "Invalid type for 'item.content': expected an array.", code="invalid_type", param="item.content"
        )
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise ClientError(
                f"Invalid value: {kind!r}. Supported values are: " + ", ".join(repr(a) for a in allowed) + ".",
                code="invalid_value",
                param=f"item.content[{index}].type",
            )


def tool_output_text(output: str | None) -> str:
    """What say_from_tool_output speaks: the supervisor's nextResponse, else its message, else the raw output."""
    if not output:
        return DEFAULT_REPLY
    try:
        parsed = json.loads(output)
    except ValueError:
        return output
    if isinstance(parsed, dict):
        for key in ("nextResponse", "message"):
            if isinstance(parsed.get(key), str) and parsed[key]:
                return parsed[key]
    return output


def split_for_deltas(text: str, parts: int) -> list[str]:
    """Spread the words of text over `parts` pieces whose concatenation is exactly text."""
    tokens = re.findall(r"\S+\s*|\s+", text)
    pieces = [""] * max(parts, 1)
    for index, token in enumerate(tokens):
        pieces[index * len(pieces) // max(len(tokens), 1)] += token
    return pieces


@dataclass
class ActiveResponse:
    id: str
    modalities: list[str]
    in_conversation: bool
    metadata: JSON | None
    output: list[JSON] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = "client_cancelled"
    open_item: JSON | None = None
    open_item_spoken: str = ""
    audio_ms: float = 0.0
    text: str = ""


class ResponseCancelled(Exception):
    """Raised at a chunk boundary of a response whose cancellation was requested."""


class RealtimeConnection:
    """One accepted Realtime WebSocket: the conversation state and the event handlers."""

    def __init__(self, ws: web.WebSocketResponse, log: RealtimeSessionLog, script: RealtimeScript) -> None:
        self.ws = ws
        self.log = log
        self.script = script
        self.loop = asyncio.get_running_loop()
        self.connected_at = self.loop.time()
        self.config = default_session(log.id, log.model)
        self.items: dict[str, JSON] = {}
        self.order: list[str] = []
        self.item_audio_ms: dict[str, float] = {}
        self.last_tool_output: str | None = None
        self.active: ActiveResponse | None = None
        self.auto_response_pending = False
        self.input_ms = 0.0
        self.buffered_ms = 0.0
        self.speech_item_id: str | None = None
        self.closing = False
        self.vad: EnergyVad | None = None
        self.prior_input_tokens = 0
        self._send_lock = asyncio.Lock()
        self._expiry_handle: asyncio.TimerHandle | None = None
        self._reset_vad()
        log.session_config = copy.deepcopy(self.config)

    # -- config -----------------------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        return AudioFormat.from_config(self.config["audio"]["input"].get("format"))

    @property
    def output_format(self) -> AudioFormat:
        return AudioFormat.from_config(self.config["audio"]["output"].get("format"))

    @property
    def turn_detection(self) -> JSON | None:
        return self.config["audio"]["input"].get("turn_detection")

    def _reset_vad(self) -> None:
        detection = self.turn_detection
        self.speech_item_id = None
        if not detection:
            self.vad = None
            return
        if detection.get("type") == "semantic_vad":
            silence = SEMANTIC_SILENCE_MS[detection.get("eagerness") or "auto"]
            threshold = DEFAULT_VAD_THRESHOLD
        else:
            silence = detection.get("silence_duration_ms") or DEFAULT_SILENCE_MS
            threshold = detection.get("threshold") or DEFAULT_VAD_THRESHOLD
        self.vad = EnergyVad(
            self.input_format, offset_ms=round(self.input_ms), threshold_rms=1000 * threshold, silence_ms=silence
        )

    # -- sending ----------------------------------------------------------------------------

    async def emit(self, event: JSON) -> None:
        if self.closing or self.ws.closed:
            return
        event = {"event_id": new_id("event"), **event}
        async with self._send_lock:
            # Logged in wire order, stamped once the send lock is ours.
            self.log._record(self.log.sent, event)
            try:
                await self.ws.send_str(json.dumps(event))
            except ConnectionError:
                self.closing = True

    async def emit_error(self, error: ClientError, client_event: JSON | None = None) -> None:
        await self.emit(
            {
                "type": "error",
                "error": {
                    "type": error.error_type,
                    "code": error.code,
                    "message": error.message,
                    "param": error.param,
                    "event_id": (client_event or {}).get("event_id"),
                },
            }
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        self.script._subscribe(self._expiry_changed)
        self._schedule_expiry()
        await self.emit({"type": "session.created", "session": copy.deepcopy(self.config)})
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self._dispatch(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.emit_error(
                        ClientError("Binary frames are not supported; send JSON text.", code="invalid_json")
                    )
                else:
                    break
        finally:
            self.closing = True
            self.script._unsubscribe(self._expiry_changed)
            if self._expiry_handle:
                self._expiry_handle.cancel()
            if self.active and self.active.task:
                self.active.task.cancel()
            self.log.closed.set()

    def _expiry_changed(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._schedule_expiry)

    def _schedule_expiry(self) -> None:
        if self._expiry_handle:
            self._expiry_handle.cancel()
            self._expiry_handle = None
        seconds = self.script._expiry()
        if seconds is None or self.closing:
            return
        delay = max(0.0, self.connected_at + seconds - self.loop.time())
        self._expiry_handle = self.loop.call_later(delay, lambda: asyncio.ensure_future(self._expire()))

    async def _expire(self) -> None:
        if self.closing or not self.script._claim_expiry():
            return
        await self.emit_error(ClientError(SESSION_EXPIRED_MESSAGE, code="session_expired"))
        self.closing = True
        if self.active and self.active.task:
            self.active.task.cancel()
        await self.ws.close(code=1000, message=b"session expired")

    async def drop(self) -> None:
        """Lose the connection: the TCP socket is aborted, the client sees no close frame."""
        self.closing = True
        self.log.dropped = True
        transport = self.ws._req.transport if self.ws._req is not None else None  # type: ignore[attr-defined]
        if transport is not None:
            transport.abort()

    # -- dispatch ---------------------------------------------------------------------------

    async def _dispatch(self, raw: str) -> None:
        arrived = time.monotonic()
        try:
            event = json.loads(raw)
        except ValueError:
            self.log._record(self.log.received, {"invalid_json": raw}, arrived)
            await self.emit_error(ClientError("The message is not valid JSON.", code="invalid_json"))
            return
        if not isinstance(event, dict):
            self.log._record(self.log.received, {"invalid_json": raw}, arrived)
            await self.emit_error(ClientError("The message must be a JSON object.", code="invalid_json"))
            return
        self.log._record(self.log.received, event, arrived)
        handler = self._handlers.get(str(event.get("type")))
        try:
            if handler is None:
                raise ClientError(f"Unknown event type: {event.get('type')!r}.", code="unknown_event", param="type")
            await handler(self, event)
        except ClientError as error:
            await self.emit_error(error, event)

    async def _on_session_update(self, event: JSON) -> None:
        session = event.get("session")
        validate_session_update(session)
        old_input = (self.input_format, self.turn_detection)
        self.config = with_defaults(merge_session(self.config, session))
        self.log.session_config = copy.deepcopy(self.config)
        if (self.input_format, self.turn_detection) != old_input:
            self._reset_vad()
        await self.emit({"type": "session.updated", "session": copy.deepcopy(self.config)})

    async def _on_append(self, event: JSON) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ClientError("Missing required parameter: 'audio'.", code="missing_required_parameter", param="audio")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ClientError(
                "Invalid 'audio'. Expected base64-encoded audio.", code="invalid_value", param="audio"
            ) from exc
        fmt = self.input_format
        self.log.input_audio_bytes += len(data)
        self.input_ms += len(data) / fmt.bytes_per_ms
        self.buffered_ms += len(data) / fmt.bytes_per_ms
        if self.vad is None:
            return
        for edge in self.vad.feed(data):
            if edge.kind == "start":
                await self._speech_started(edge.at_ms)
            else:
                await self._speech_stopped(edge.at_ms)

    async def _speech_started(self, at_ms: int) -> None:
        detection = self.turn_detection or {}
        padding = detection.get("prefix_padding_ms")
        padding = DEFAULT_PREFIX_PADDING_MS if padding is None else padding
        self.speech_item_id = new_id("item")
        await self.emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": max(0, at_ms - padding),
                "item_id": self.speech_item_id,
            }
        )
        if detection.get("interrupt_response", True) and self.active is not None:
            await self._cancel_active("turn_detected")

    async def _speech_stopped(self, at_ms: int) -> None:
        item_id = self.speech_item_id or new_id("item")
        self.speech_item_id = None
        await self.emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": at_ms, "item_id": item_id})
        await self._commit(item_id)
        if (self.turn_detection or {}).get("create_response", True):
            if self.active is None:
                self._start_response(None)
            else:
                self.auto_response_pending = True

    async def _on_commit(self, event: JSON) -> None:
        if self.buffered_ms < MIN_COMMIT_MS:
            raise ClientError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {self.buffered_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item_id = self.speech_item_id or new_id("item")
        self._reset_vad()
        await self._commit(item_id)

    async def _on_clear(self, event: JSON) -> None:
        self.buffered_ms = 0.0
        self._reset_vad()
        await self.emit({"type": "input_audio_buffer.cleared"})

    async def _commit(self, item_id: str) -> None:
        previous = self.order[-1] if self.order else None
        line = self.script._next_caller_step()
        transcript = (line.transcript if line is not None else None) or INAUDIBLE
        audio_ms = self.buffered_ms
        self.buffered_ms = 0.0
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._add_item(item)
        await self.emit({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous})
        await self.emit({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
        await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})
        if not self.config["audio"]["input"].get("transcription"):
            return
        item["content"][0]["transcript"] = transcript
        audio_tokens = max(1, round(audio_ms / 100))
        output_tokens = len(transcript) // 4 + 1
        completed: JSON = {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": transcript,
            "usage": {
                "type": "tokens",
                "input_tokens": audio_tokens,
                "output_tokens": output_tokens,
                "total_tokens": audio_tokens + output_tokens,
                "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
            },
        }
        transcriber = self.config["audio"]["input"]["transcription"].get("model")
        if transcriber in LANGUAGE_DETECTING_TRANSCRIBERS:
            # The GA event's `languages` ("Returned by gpt-transcribe"; empty: none reliably detected).
            completed["languages"] = [{"code": line.language}] if line is not None and line.language else []
        await self.emit(completed)

    def _add_item(self, item: JSON) -> None:
        self.items[item["id"]] = item
        self.order.append(item["id"])

    async def _on_item_create(self, event: JSON) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ClientError("Missing required parameter: 'item'.", code="missing_required_parameter", param="item")
        item = copy.deepcopy(item)
        kind = item.get("type")
        required = {
            "message": ("role", "content"),
            "function_call": ("name", "arguments"),
            "function_call_output": ("call_id", "output"),
        }.get(str(kind))
        if required is None:
            raise ClientError(f"Invalid value: {kind!r} for 'item.type'.", code="invalid_value", param="item.type")
        for key in required:
            if key not in item:
                raise ClientError(
                    f"Missing required parameter: 'item.{key}'.", code="missing_required_parameter", param=f"item.{key}"
                )
        if kind == "message":
            check_message_content(item)
        if item.get("id") in self.items:
            raise ClientError(f"Item with id {item['id']!r} already exists.", code="duplicate_item_id", param="item.id")
        item.setdefault("id", new_id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        previous = self.order[-1] if self.order else None
        self._add_item(item)
        if kind == "function_call_output":
            self.last_tool_output = str(item["output"])
        await self.emit({"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous})
        await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item), "previous_item_id": previous})

    async def _on_item_truncate(self, event: JSON) -> None:
        self.log.truncations.append(copy.deepcopy(event))
        item_id = event.get("item_id")
        audio_end_ms = event.get("audio_end_ms")
        content_index = event.get("content_index", 0)
        if not isinstance(audio_end_ms, int) or audio_end_ms < 0:
            raise ClientError(
                "Invalid 'audio_end_ms': expected a non-negative integer.", code="invalid_value", param="audio_end_ms"
            )
        item = self.items.get(str(item_id))
        if item is None:
            raise ClientError(f"Item with item_id not found: {item_id}", code="item_not_found", param="item_id")
        if item.get("role") != "assistant" or str(item_id) not in self.item_audio_ms:
            raise ClientError(
                "Only assistant messages with audio content can be truncated.", code="invalid_value", param="item_id"
            )
        if content_index != 0:
            raise ClientError(f"Content index {content_index} not found.", code="invalid_value", param="content_index")
        produced = math.floor(self.item_audio_ms[str(item_id)])
        if audio_end_ms > produced:
            raise ClientError(
                f"Audio content of {produced}ms is already shorter than {audio_end_ms}ms", code="invalid_value"
            )
        await self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )

    async def _on_item_delete(self, event: JSON) -> None:
        item_id = str(event.get("item_id"))
        if item_id not in self.items:
            raise ClientError(f"Item with item_id not found: {item_id}", code="item_not_found", param="item_id")
        del self.items[item_id]
        self.order.remove(item_id)
        await self.emit({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_item_retrieve(self, event: JSON) -> None:
        item_id = str(event.get("item_id"))
        if item_id not in self.items:
            raise ClientError(f"Item with item_id not found: {item_id}", code="item_not_found", param="item_id")
        await self.emit({"type": "conversation.item.retrieved", "item": copy.deepcopy(self.items[item_id])})

    async def _on_response_create(self, event: JSON) -> None:
        if self.active is not None:
            raise ClientError(
                f"Conversation already has an active response in progress: {self.active.id}. "
                "Wait until the response is finished before creating a new one.",
                code="conversation_already_has_active_response",
            )
        params = event.get("response")
        if params is not None and not isinstance(params, dict):
            raise ClientError("Invalid type for 'response': expected an object.", code="invalid_type", param="response")
        self._start_response(params)

    async def _on_response_cancel(self, event: JSON) -> None:
        wanted = event.get("response_id")
        if self.active is None or (wanted and wanted != self.active.id):
            raise ClientError("Cancellation failed: no active response found", code="response_cancel_not_active")
        await self._cancel_active("client_cancelled")

    async def _on_output_audio_buffer_clear(self, event: JSON) -> None:
        raise ClientError(
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
            code="invalid_value",
            param="type",
        )

    _handlers: dict[str, Callable[[RealtimeConnection, JSON], Any]] = {
        "session.update": _on_session_update,
        "input_audio_buffer.append": _on_append,
        "input_audio_buffer.commit": _on_commit,
        "input_audio_buffer.clear": _on_clear,
        "conversation.item.create": _on_item_create,
        "conversation.item.truncate": _on_item_truncate,
        "conversation.item.delete": _on_item_delete,
        "conversation.item.retrieve": _on_item_retrieve,
        "response.create": _on_response_create,
        "response.cancel": _on_response_cancel,
        "output_audio_buffer.clear": _on_output_audio_buffer_clear,
    }

    # -- responses --------------------------------------------------------------------------

    def _start_response(self, params: JSON | None) -> None:
        params = params or {}
        modalities = params.get("output_modalities") or self.config.get("output_modalities") or ["audio"]
        response = ActiveResponse(
            id=new_id("resp"),
            modalities=list(modalities),
            in_conversation=params.get("conversation", "auto") != "none",
            metadata=params.get("metadata"),
        )
        step = self.script._next_agent_step() or Say(DEFAULT_REPLY)
        self.active = response
        response.task = asyncio.ensure_future(self._run_response(response, step))

    async def _cancel_active(self, reason: str) -> None:
        response = self.active
        if response is None or response.task is None:
            return
        response.cancel_reason = reason
        # A flag rather than task.cancel(): a task cancelled before its first step would never send its
        # response.done. The caller's next event must see that response.done already sent.
        response.cancel_requested.set()
        await asyncio.wait({response.task})

    async def _pause(self, response: ActiveResponse, seconds: float) -> None:
        """Wait between chunks; stop the response here if it was cancelled meanwhile."""
        if seconds > 0 and not response.cancel_requested.is_set():
            try:
                await asyncio.wait_for(response.cancel_requested.wait(), timeout=seconds)
            except TimeoutError:
                pass
        if response.cancel_requested.is_set():
            raise ResponseCancelled

    def _snapshot(self, response: ActiveResponse, status: str, usage: JSON | None = None) -> JSON:
        details: JSON | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": response.cancel_reason}
        output_audio = self.config["audio"]["output"]
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": details,
            "output": copy.deepcopy(response.output),
            "conversation_id": new_conversation_id(self.log.id) if response.in_conversation else None,
            "output_modalities": response.modalities,
            "max_output_tokens": self.config.get("max_output_tokens", "inf"),
            "audio": {"output": {"format": output_audio.get("format"), "voice": output_audio.get("voice")}},
            "usage": usage,
            "metadata": response.metadata,
        }

    async def _run_response(self, response: ActiveResponse, step: AgentStep) -> None:
        status = "completed"
        try:
            await self.emit({"type": "response.created", "response": self._snapshot(response, "in_progress")})
            await self._pause(response, 0)
            if isinstance(step, Say):
                await self._speak(response, step.text, drop_after_ms=step.drop_after_ms)
            elif isinstance(step, SayFromToolOutput):
                await self._speak(response, tool_output_text(self.last_tool_output))
            else:
                if step.say_first:
                    await self._speak(response, step.say_first)
                await self._function_call(response, step.name, step.arguments)
        except ResponseCancelled:
            status = "cancelled"
            await self._close_open_item(response)
        # No longer active before response.done goes out: a client may answer it with response.create at once.
        if self.active is response:
            self.active = None
        await self.emit({"type": "response.done", "response": self._snapshot(response, status, self._usage(response))})
        await self.emit(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                    {"name": "tokens", "limit": 400000, "remaining": 395000, "reset_seconds": 0.75},
                ],
            }
        )
        if self.auto_response_pending and not self.closing and self.active is None:
            self.auto_response_pending = False
            self._start_response(None)

    def _usage(self, response: ActiveResponse) -> JSON:
        instructions = str(self.config.get("instructions") or "")
        tools = json.dumps(self.config.get("tools") or [])
        transcripts = sum(
            len(part.get("transcript") or part.get("text") or "")
            for item in self.items.values()
            for part in item.get("content", [])
            if isinstance(part, dict)
        )
        input_text = (len(instructions) + len(tools) + transcripts) // 4 + 1
        input_audio = round(self.input_ms / 100)
        input_tokens = input_text + input_audio
        # Earlier turns of the same conversation are served from the prompt cache in 64-token blocks.
        cached = min(input_tokens, self.prior_input_tokens // 64 * 64)
        self.prior_input_tokens = input_tokens
        cached_text = min(cached, input_text)
        output_text = len(response.text) // 4
        output_audio = round(response.audio_ms / 100)
        return {
            "input_tokens": input_tokens,
            "output_tokens": output_text + output_audio,
            "total_tokens": input_tokens + output_text + output_audio,
            "input_token_details": {
                "text_tokens": input_text,
                "audio_tokens": input_audio,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached_text,
                    "audio_tokens": cached - cached_text,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
        }

    async def _open_item(self, response: ActiveResponse, item: JSON) -> int:
        output_index = len(response.output)
        response.output.append(item)
        response.open_item = item
        response.open_item_spoken = ""
        await self.emit(
            {
                "type": "response.output_item.added",
                "response_id": response.id,
                "output_index": output_index,
                "item": copy.deepcopy(item),
            }
        )
        if response.in_conversation:
            previous = self.order[-1] if self.order else None
            self._add_item(item)
            await self.emit(
                {"type": "conversation.item.added", "item": copy.deepcopy(item), "previous_item_id": previous}
            )
        return output_index

    async def _finish_item(self, response: ActiveResponse, item: JSON, output_index: int) -> None:
        response.open_item = None
        await self.emit(
            {
                "type": "response.output_item.done",
                "response_id": response.id,
                "output_index": output_index,
                "item": copy.deepcopy(item),
            }
        )
        if response.in_conversation:
            await self.emit({"type": "conversation.item.done", "item": copy.deepcopy(item)})

    async def _close_open_item(self, response: ActiveResponse) -> None:
        item = response.open_item
        if item is None:
            return
        item["status"] = "incomplete"
        if item["type"] == "message":
            key, kind = ("transcript", "output_audio") if "audio" in response.modalities else ("text", "output_text")
            item["content"] = [{"type": kind, key: response.open_item_spoken}]
        await self._finish_item(response, item, response.output.index(item))

    async def _speak(self, response: ActiveResponse, text: str, *, drop_after_ms: int | None = None) -> None:
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        output_index = await self._open_item(response, item)
        where = {"response_id": response.id, "item_id": item["id"], "output_index": output_index, "content_index": 0}
        if "audio" in response.modalities:
            await self._stream_audio(response, item, text, where, drop_after_ms=drop_after_ms)
            item["content"] = [{"type": "output_audio", "transcript": text}]
        else:
            await self.emit({"type": "response.content_part.added", **where, "part": {"type": "text", "text": ""}})
            for piece in split_for_deltas(text, max(1, len(text.split()))):
                await self._pause(response, 0)
                await self.emit({"type": "response.output_text.delta", **where, "delta": piece})
                response.open_item_spoken += piece
            await self.emit({"type": "response.output_text.done", **where, "text": text})
            await self.emit({"type": "response.content_part.done", **where, "part": {"type": "text", "text": text}})
            item["content"] = [{"type": "output_text", "text": text}]
        response.text += text
        item["status"] = "completed"
        await self._finish_item(response, item, output_index)

    async def _stream_audio(self, response: ActiveResponse, item: JSON, text: str, where: JSON, *,
                            drop_after_ms: int | None = None) -> None:
        fmt = self.output_format
        audio = speech_like_tone(spoken_ms(text), fmt)
        chunk_bytes = DELTA_MS * fmt.bytes_per_ms
        chunks = [audio[start : start + chunk_bytes] for start in range(0, len(audio), chunk_bytes)]
        pieces = split_for_deltas(text, len(chunks))
        self.item_audio_ms[item["id"]] = 0.0
        await self.emit({"type": "response.content_part.added", **where, "part": {"type": "audio", "transcript": ""}})
        started = self.loop.time()
        for index, (chunk, piece) in enumerate(zip(chunks, pieces, strict=True)):
            # Real-time pacing, so a caller can barge in while the reply is still being produced.
            await self._pause(response, started + index * DELTA_MS / 1000 - self.loop.time())
            if piece:
                await self.emit({"type": "response.output_audio_transcript.delta", **where, "delta": piece})
                response.open_item_spoken += piece
            await self.emit(
                {"type": "response.output_audio.delta", **where, "delta": base64.b64encode(chunk).decode("ascii")}
            )
            produced_ms = len(chunk) / fmt.bytes_per_ms
            self.item_audio_ms[item["id"]] += produced_ms
            response.audio_ms += produced_ms
            if drop_after_ms is not None and self.item_audio_ms[item["id"]] >= drop_after_ms:
                await self.drop()
                raise ResponseCancelled
        await self.emit({"type": "response.output_audio.done", **where})
        await self.emit({"type": "response.output_audio_transcript.done", **where, "transcript": text})
        await self.emit({"type": "response.content_part.done", **where, "part": {"type": "audio", "transcript": text}})

    async def _function_call(self, response: ActiveResponse, name: str, arguments: JSON) -> None:
        call_id = new_id("call")
        encoded = json.dumps(arguments)
        item = {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        output_index = await self._open_item(response, item)
        where = {"response_id": response.id, "item_id": item["id"], "output_index": output_index, "call_id": call_id}
        half = len(encoded) // 2
        await self._pause(response, 0)
        for piece in (encoded[:half], encoded[half:]):
            if piece:
                await self.emit({"type": "response.function_call_arguments.delta", **where, "delta": piece})
        await self.emit({"type": "response.function_call_arguments.done", **where, "name": name, "arguments": encoded})
        item["arguments"] = encoded
        item["status"] = "completed"
        response.text += encoded
        await self._finish_item(response, item, output_index)


def new_conversation_id(session_id: str) -> str:
    return "conv_" + session_id.removeprefix("sess_")


# ---------------------------------------------------------------------------------------------
# Responses API
# ---------------------------------------------------------------------------------------------

_CALLER_LINE = re.compile(r"^\s*(?:caller|user|customer)\s*:\s*(.+?)\s*$", re.IGNORECASE)


def _texts(value: Any) -> list[str]:
    """Every string in a Responses `input`/`instructions` value, in order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for entry in value for text in _texts(entry)]
    if isinstance(value, dict):
        found: list[str] = []
        for key in ("content", "text", "output", "arguments"):
            if key in value:
                found.extend(_texts(value[key]))
        return found
    return []


def _first_caller_line(body: JSON) -> str:
    for text in _texts(body.get("input")):
        for line in text.splitlines():
            match = _CALLER_LINE.match(line)
            if match:
                return match.group(1)
    entries = body.get("input") if isinstance(body.get("input"), list) else []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("role") == "user":
            for text in _texts(entry):
                for line in text.splitlines():
                    if line.strip() and "summar" not in line.lower():
                        return line.strip()
    return "(no caller speech)"


def default_reply_text(body: JSON) -> str:
    wanted = " ".join(_texts(body.get("instructions")) + _texts(body.get("input"))).lower()
    if "summar" in wanted:
        return "Summary: " + _first_caller_line(body)
    return DEFAULT_REPLY


def openai_error_body(message: str, *, error_type: str, code: str | None = None, param: str | None = None) -> JSON:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
}


def status_error_body(status: int, message: str | None) -> JSON:
    error_type, code, text = _STATUS_ERRORS.get(
        status, ("server_error", None, "The server had an error while processing your request. Sorry about that!")
    )
    return openai_error_body(message or text, error_type=error_type, code=code)


def input_problem(body: JSON) -> JSON | None:
    """The 400 body the real API gives for a malformed tool-call history, else None.

    A function_call_output must follow its function_call in the same input (unless the history lives on
    the server via previous_response_id): the classic bug of a supervisor loop that drops the call.
    """
    entries = body.get("input")
    if not isinstance(entries, list) or body.get("previous_response_id"):
        return None
    calls: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        kind = entry.get("type")
        if kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(entry.get(key), str):
                    return openai_error_body(
                        f"Missing required parameter: 'input[{index}].{key}'.",
                        error_type="invalid_request_error",
                        code="missing_required_parameter",
                        param=f"input[{index}].{key}",
                    )
            calls.add(entry["call_id"])
        elif kind == "function_call_output" and entry.get("call_id") not in calls:
            return openai_error_body(
                f"No tool call found for function call output with call_id {entry.get('call_id')}.",
                error_type="invalid_request_error",
                param="input",
            )
    return None


def response_object(body: JSON, output: list[JSON]) -> JSON:
    input_tokens = len(json.dumps(body.get("input", ""))) // 4 + len(str(body.get("instructions") or "")) // 4 + 1
    output_tokens = sum(len(json.dumps(item)) for item in output) // 16 + 1
    cached = input_tokens // 1024 * 1024
    tools = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            tool = {"strict": True, "description": None, **tool}
        tools.append(tool)
    now = int(time.time())
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": now,
        "completed_at": now,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": tools,
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def reply_output(reply: FunctionCallReply | TextReply) -> list[JSON]:
    if isinstance(reply, FunctionCallReply):
        return [
            {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": new_id("call"),
                "name": reply.name,
                "arguments": json.dumps(reply.arguments),
                "status": "completed",
            }
        ]
    return [
        {
            "type": "message",
            "id": new_id("msg"),
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
        }
    ]


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class OpenAIDouble(OnThreadedSite):
    def __init__(self, api_key: str = "test-key", host: str = "127.0.0.1") -> None:
        self.api_key = api_key
        self.host = host
        self.realtime = RealtimeScript()
        self.responses = ResponsesScript()
        self.realtime_sessions: list[RealtimeSessionLog] = []
        self.response_requests: list[JSON] = []
        self.fail_realtime_connect = False
        # GPT-Live (tests/doubles/live_double.py), on the same server: script, logs, refusal code
        from tests.doubles.live_double import LiveScript, LiveSessionLog

        self.live = LiveScript()
        self.live_sessions: list[LiveSessionLog] = []
        self.refuse_live: str | None = None
        self.refuse_connects = 0  # refuse this many of the next connects (HTTP 503), then accept again
        self.refused_connects = 0
        self.transcription_text = "Hi, this is Ann, please call me back about my booking."
        self.transcription_failures = 0  # the next N transcription requests answer 503
        self.transcription_requests: list[JSON] = []
        self._sessions_changed = threading.Condition()
        self._connections: set[RealtimeConnection] = set()
        self._site = ThreadedSite("openai-double", self._app, host=self.host)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._site.loop is None:
            raise RuntimeError("OpenAIDouble is not started")
        return self._site.port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        self.realtime.clear()
        self.responses.clear()
        with self._sessions_changed:
            self.realtime_sessions.clear()
        self.response_requests.clear()
        self.fail_realtime_connect = False
        self.live.clear()
        with self._sessions_changed:
            self.live_sessions.clear()
        self.refuse_live = None
        self.refuse_connects = 0
        self.refused_connects = 0
        self.transcription_failures = 0
        self.transcription_requests.clear()

    def wait_for_session(self, index: int = 0, timeout: float = 5.0) -> RealtimeSessionLog:
        with self._sessions_changed:
            if not self._sessions_changed.wait_for(lambda: len(self.realtime_sessions) > index, timeout=timeout):
                raise TimeoutError(f"no realtime session #{index} within {timeout}s")
            return self.realtime_sessions[index]

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/v1/realtime", self._realtime_handler)
        app.router.add_post("/v1/responses", self._responses_handler)
        app.router.add_get("/v1/live/sessions", self._live_handler)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions_handler)
        app.on_shutdown.append(self._close_connections)
        return app

    async def _close_connections(self, _app: web.Application) -> None:
        for connection in list(self._connections):
            connection.closing = True
            await connection.ws.close(code=1001, message=b"server shutting down")

    # -- HTTP -------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    def _unauthorized(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        shown = f"{given[:3]}***{given[-4:]}" if len(given) > 8 else "***"
        message = (
            f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
            if given
            else "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        return web.json_response(
            openai_error_body(message, error_type="invalid_request_error", code="invalid_api_key" if given else None),
            status=401,
        )

    async def _realtime_handler(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized(request)
        if "realtime=v1" in request.headers.get("OpenAI-Beta", ""):
            return web.json_response(
                openai_error_body(
                    "The beta Realtime protocol (OpenAI-Beta: realtime=v1) is not served here; use the GA protocol.",
                    error_type="invalid_request_error",
                    code="beta_not_supported",
                ),
                status=400,
            )
        if self.refuse_connects > 0:
            self.refuse_connects -= 1
            self.refused_connects += 1
            return web.json_response(
                status_error_body(503, "The realtime service is unavailable (refuse_connects)."), status=503
            )
        if self.fail_realtime_connect:
            return web.json_response(
                status_error_body(500, "The realtime service is unavailable (fail_realtime_connect)."), status=500
            )
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024, timeout=2.0, compress=False)
        if not ws.can_prepare(request).ok:
            return web.json_response(
                openai_error_body("Expected a WebSocket upgrade.", error_type="invalid_request_error"), status=400
            )
        await ws.prepare(request)
        log = RealtimeSessionLog(
            id=new_id("sess"), model=request.query.get("model", "gpt-realtime"), headers=dict(request.headers)
        )
        with self._sessions_changed:
            self.realtime_sessions.append(log)
            self._sessions_changed.notify_all()
        connection = RealtimeConnection(ws, log, self.realtime)
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)
        return ws

    async def _live_handler(self, request: web.Request) -> web.StreamResponse:
        from tests.doubles.live_double import serve_live

        return await serve_live(self, request)

    def wait_for_live_session(self, index: int = 0, timeout: float = 5.0) -> Any:
        from tests.doubles.live_double import wait_for_live_session

        return wait_for_live_session(self, index, timeout)
    async def _transcriptions_handler(self, request: web.Request) -> web.Response:
        """`POST /v1/audio/transcriptions` (multipart: file, model): `{"text": …}`, the next scripted text."""
        if not self._authorized(request):
            return self._unauthorized(request)
        if self.transcription_failures > 0:
            self.transcription_failures -= 1
            return web.json_response(status_error_body(503, "The transcription service is unavailable."),
                                     status=503)
        form = await request.post()
        upload, model = form.get("file"), form.get("model")
        if not isinstance(model, str) or upload is None or not hasattr(upload, "file"):
            return web.json_response(openai_error_body("Missing required parameter: 'file' or 'model'.",
                                                       error_type="invalid_request_error"), status=400)
        audio = upload.file.read()
        self.transcription_requests.append({"model": model, "filename": upload.filename, "bytes": len(audio)})
        return web.json_response({"text": self.transcription_text,
                                  "usage": {"type": "duration", "seconds": max(1, len(audio) // 8000)}})

    async def _responses_handler(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized(request)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response(
                openai_error_body(
                    "We could not parse the JSON body of your request.", error_type="invalid_request_error"
                ),
                status=400,
            )
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return web.json_response(
                openai_error_body(
                    "Missing required parameter: 'model'.",
                    error_type="invalid_request_error",
                    code="missing_required_parameter",
                    param="model",
                ),
                status=400,
            )
        self.response_requests.append(body)
        if body.get("stream"):
            return web.json_response(
                openai_error_body(
                    "stream=true is not implemented by the test double.",
                    error_type="invalid_request_error",
                    param="stream",
                ),
                status=400,
            )
        problem = input_problem(body)
        if problem is not None:
            return web.json_response(problem, status=400)
        delay, reply = self.responses.for_model(body["model"])._take()
        if delay:
            await asyncio.sleep(delay)
        if isinstance(reply, ErrorReply):
            return web.json_response(status_error_body(reply.status, reply.message), status=reply.status)
        reply = reply or TextReply(default_reply_text(body))
        return web.json_response(response_object(body, reply_output(reply)))
