"""The GPT-Live side of a call: one Live WebSocket (`/v1/live/sessions`) through the openai SDK, behind the
same `Link` interface the CallBridge uses for the Realtime API.

GPT-Live is full duplex and has no responses, items or tool calls of its own: it streams audio and
transcript fragments, handles barge-in itself, and *delegates* work to the application (client delegation).
This link translates in both directions so the bridge, transports, recorder, live view and summaries work
unchanged:

* Agent audio/transcript fragments become one synthetic Realtime response per utterance
  (`response.created` … `response.output_audio.delta` … `response.output_audio_transcript.done`,
  `response.done`); an utterance ends when the model's audio pauses for `AGENT_GAP_SECONDS`.
* Caller transcript fragments become a caller turn (`input_audio_buffer.speech_started`, then
  `speech_stopped` + `…transcription.completed`) that ends after `CALLER_GAP_SECONDS` without a fragment,
  when the model starts answering, or when it delegates.
* The model stopping while the caller talks over it is a barge-in: the turn is reported (speech_started
  after the utterance's end) so the bridge clears the caller's queued audio and records what was heard.
  The bridge's `conversation.item.truncate` / `response.cancel` are not sent on: Live already stopped.
* `session.delegation.created` (client target) becomes a call of the supervisor tool whose `call_id` is
  the delegation id; the bridge's `function_call_output` for it goes back as `session.commentary.append`
  for that delegation. The live model keeps talking meanwhile.
* Call control (hang up after goodbye, transfer) is chosen by the supervisor on this engine
  (`request_call_control`); it is reported as the matching receptionist tool call at the end of the
  next utterance, i.e. after the goodbye or "connecting you" has been spoken.
* `session.usage.updated` / `session.closed` usage (cumulative seconds) goes to `on_usage`.

`FallbackLink` opens Live and, if the session can't be started, carries the call on a Realtime link instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from openai import AsyncOpenAI
from openai.resources.live.live import AsyncLiveConnection

from app.db.models import Business
from app.settings import Settings
from app.voice.prompts import END_CALL_TOOL, SUPERVISOR_TOOL, TRANSFER_TOOL, CallerContext, business_facts
from app.voice.realtime import (
    CONNECT_TIMEOUT_SECONDS,
    Link,
    LinkUnavailable,
    RealtimeLink,
    connection_options,
    openai_client,
)

log = logging.getLogger(__name__)

#: the model's audio pausing this long ends its utterance (Live streams speech at about real time)
AGENT_GAP_SECONDS = 0.35
#: no caller transcript fragment for this long ends the caller's turn
CALLER_GAP_SECONDS = 0.7
#: armed call control waits this long for the model to speak before it is carried out anyway
CONTROL_GRACE_SECONDS = 3.0
#: how long `settle` waits for `session.closed` (its final usage)
CLOSE_WAIT_SECONDS = 2.0
CALL_CONTROLS = (END_CALL_TOOL, TRANSFER_TOOL)

UsageSink = Callable[[float, float], None]


def live_audio_format(realtime_format: dict[str, Any]) -> dict[str, Any]:
    """The transport's Realtime format in Live's terms: pcmu stays pcmu (Twilio audio passes through)."""
    if realtime_format.get("type") == "audio/pcmu":
        return {"type": "audio/pcmu", "rate": 8000}
    return {"type": "audio/pcm", "rate": int(realtime_format.get("rate") or 24000)}


def live_session_config(
    *, model: str, instructions: str, voice: str, audio_format: dict[str, Any]
) -> dict[str, Any]:
    """The `session.start` body: our own app handles every delegation (client delegation)."""
    return {
        "model": model,
        "instructions": instructions,
        "audio": {"format": live_audio_format(audio_format), "output": {"voice": voice}},
        "delegation": {"type": "client"},
    }


def live_instructions(business: Business, caller: CallerContext) -> str:
    """The live model's frontend prompt: voice and when to delegate; the business rules stay with the
    supervisor (our backend), which answers every delegation."""
    return f"""You are the phone receptionist for {business.name}. Speak naturally, warmly and briefly: one or
two short sentences per turn, in the caller's language. Never invent facts, times or prices.

Delegate to the backend whenever the caller wants anything beyond a greeting or small talk: facts about the
business, availability, booking, cancelling or moving an appointment, leaving a message, speaking to a
person, and also when the caller says goodbye or is finished. While the backend works, say a very short
filler such as "One moment." and keep the caller company; then say the backend's answer as given.

{business_facts(business, caller)}"""


CALL_CONTROL_NOTE = f"""

On this line you also control the call itself. When the caller says goodbye or has nothing more, call
{END_CALL_TOOL} and reply with a short goodbye. When the caller asks for a person, call {TRANSFER_TOOL} and
reply with a short "connecting you" line; if the tool says no one can take the call, offer to take a message."""


def call_control_tools() -> list[dict[str, Any]]:
    """Responses-API function tools for the supervisor on the Live engine."""
    return [
        {"type": "function", "name": END_CALL_TOOL,
         "description": "Hang up once your goodbye has been said to the caller.",
         "parameters": {"type": "object", "properties": {}, "additionalProperties": False}, "strict": True},
        {"type": "function", "name": TRANSFER_TOOL,
         "description": "Transfer the caller to a person at the business after your reply has been said.",
         "parameters": {"type": "object", "properties": {}, "additionalProperties": False}, "strict": True},
    ]


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _describe_failure(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return "OpenAI refused the API key for GPT-Live (401)"
    if status is not None:
        return f"OpenAI refused the GPT-Live connection (HTTP {status})"
    if isinstance(exc, TimeoutError):
        return "GPT-Live did not answer in time"
    return f"GPT-Live could not be reached ({type(exc).__name__})"


class LiveLink:
    engine = "live"

    def __init__(
        self,
        settings: Settings,
        client: AsyncOpenAI | None,
        session: dict[str, Any],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._session = session
        self.model = str(session.get("model") or settings.live_model)
        self._clock = clock
        self._client = client
        self._failure: str | None = None
        if client is None:
            try:
                self._client = openai_client(settings)
            except LinkUnavailable as exc:
                self._failure = exc.reason
        self._conn: AsyncLiveConnection | None = None
        self._connect_task: asyncio.Task[AsyncLiveConnection] | None = None
        self._closed = False
        self.session_id: str | None = None
        self.on_usage: UsageSink | None = None
        self._session_closed = asyncio.Event()
        self._out: list[dict[str, Any]] = []  # translated events waiting to be yielded

        # agent utterance (one synthetic response)
        self._response_id: str | None = None
        self._item_id: str | None = None
        self._agent_text = ""
        self._last_agent_at = 0.0
        self._response_controls: list[str] = []
        # caller turn
        self._caller_item: str | None = None
        self._caller_text = ""
        self._last_caller_at = 0.0
        self._last_caller_turn = ""
        self._interrupted = False  # the caller talked over the current utterance
        # delegations and call control
        self._delegations: set[str] = set()
        self._control_requested: list[str] = []
        self._control_armed: list[str] = []
        self._control_armed_at = 0.0

    # -- connection ---------------------------------------------------------------------------------------
    def start(self) -> LiveLink:
        if self._client is not None and self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect(self._client), name="live-connect")
        return self

    async def _connect(self, client: AsyncOpenAI) -> AsyncLiveConnection:
        # No on_reconnecting: a silent reconnect would lose the conversation mid-call.
        manager = client.live.connect(websocket_connection_options=connection_options(self._settings))
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            conn = await manager.enter()
            try:
                await conn.send_raw(json.dumps({"type": "session.start", "session": self._session}))
                while True:
                    event = json.loads(await conn.recv_bytes())
                    kind = event.get("type")
                    if kind == "session.started":
                        self.session_id = str((event.get("session") or {}).get("id") or "")
                        return conn
                    if kind == "error":
                        error = event.get("error") or {}
                        raise LinkUnavailable(
                            f"GPT-Live refused the session ({error.get('code') or 'error'}: "
                            f"{str(error.get('message') or '')[:200]})"
                        )
                    if kind == "session.closed":
                        raise LinkUnavailable("GPT-Live closed the session as it started")
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise

    async def wait_connected(self) -> None:
        if self._failure is not None:
            raise LinkUnavailable(self._failure)
        self.start()
        assert self._connect_task is not None
        try:
            self._conn = await self._connect_task
        except asyncio.CancelledError:
            raise
        except LinkUnavailable as exc:
            self._failure = exc.reason
            log.warning("live session refused: %s", exc.reason)
            raise
        except Exception as exc:
            self._failure = _describe_failure(exc)
            log.warning("live connect failed: %s (%r)", self._failure, exc)
            raise LinkUnavailable(self._failure) from None
        self._last_agent_at = self._last_caller_at = self._clock()

    @property
    def connection(self) -> AsyncLiveConnection:
        if self._conn is None:
            raise LinkUnavailable(self._failure or "the live connection is not open")
        return self._conn

    async def _send_live(self, event: dict[str, Any]) -> None:
        await self.connection.send_raw(json.dumps(event))

    async def append_audio(self, chunk: bytes | str) -> None:
        payload = chunk if isinstance(chunk, str) else base64.b64encode(chunk).decode("ascii")
        await self.connection.send_raw('{"type":"session.input_audio.append","audio":"' + payload + '"}')

    # -- the bridge's (Realtime) client events, in Live's terms -------------------------------------------
    async def send(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.create":
            instructions = (event.get("response") or {}).get("instructions")
            if instructions:  # greeting, silence prompt, time limit: something the model should say now
                await self._commentary(str(instructions), None)
        elif kind == "conversation.item.create":
            await self._on_item(event.get("item") or {})
        elif kind == "response.cancel":
            # Live stops by itself when the caller talks; a call that ends mid-utterance just closes it.
            if self._response_id is not None:
                self._end_utterance()
        # session.update (the start config was sent at connect), conversation.item.truncate: nothing to send

    async def _on_item(self, item: dict[str, Any]) -> None:
        if item.get("type") == "function_call_output":
            call_id = str(item.get("call_id") or "")
            try:
                output = json.loads(item.get("output") or "{}")
            except ValueError:
                output = {"message": str(item.get("output") or "")}
            if isinstance(output, dict) and "nextResponse" in output:
                text = str(output["nextResponse"])
            elif isinstance(output, dict) and "message" in output:
                text = str(output["message"])
            else:
                text = json.dumps(output)
            delegation = call_id if call_id in self._delegations else None
            self._delegations.discard(call_id)
            await self._commentary(text, delegation)
            if delegation is not None and self._control_requested:
                # Hang-up / transfer wait until the words that go with them have been spoken.
                self._control_armed += self._control_requested
                self._control_requested = []
                self._control_armed_at = self._clock()
        elif item.get("type") == "message":
            texts = [str(part.get("text") or "") for part in item.get("content") or [] if isinstance(part, dict)]
            if any(texts):
                await self._commentary(" ".join(t for t in texts if t), None)

    async def _commentary(self, content: str, delegation_id: str | None) -> None:
        await self._send_live({"type": "session.commentary.append", "content": content,
                               "delegation_id": delegation_id})

    def request_call_control(self, name: str) -> None:
        """The supervisor decided to hang up or transfer (this engine's receptionist has no tools)."""
        if name in CALL_CONTROLS and name not in self._control_requested:
            self._control_requested.append(name)

    # -- Live's server events, in the bridge's terms ------------------------------------------------------
    async def events(self) -> AsyncIterator[dict[str, Any]]:
        from websockets.exceptions import ConnectionClosed

        conn = self.connection
        while True:
            while self._out:
                yield self._out.pop(0)
            timeout = self._next_deadline()
            try:
                if timeout is None:
                    raw = await conn.recv_bytes()
                else:
                    async with asyncio.timeout(max(0.0, timeout)):
                        raw = await conn.recv_bytes()
            except TimeoutError:
                self._on_timers()
                continue
            except ConnectionClosed:
                self._on_timers(final=True)
                while self._out:
                    yield self._out.pop(0)
                return
            try:
                event = json.loads(raw)
            except ValueError:
                log.warning("live sent a frame that is not JSON; ignored")
                continue
            if isinstance(event, dict):
                self._on_timers()
                self._translate(event)

    def _next_deadline(self) -> float | None:
        now = self._clock()
        deadlines = []
        if self._response_id is not None:
            deadlines.append(self._last_agent_at + AGENT_GAP_SECONDS)
        if self._caller_item is not None:
            deadlines.append(self._last_caller_at + CALLER_GAP_SECONDS)
        if self._control_armed:
            deadlines.append(self._control_armed_at + CONTROL_GRACE_SECONDS)
        return min(deadlines) - now if deadlines else None

    def _on_timers(self, *, final: bool = False) -> None:
        now = self._clock()
        if self._response_id is not None and (final or now - self._last_agent_at >= AGENT_GAP_SECONDS):
            self._end_utterance()
        if self._caller_item is not None and (final or now - self._last_caller_at >= CALLER_GAP_SECONDS):
            self._end_caller_turn()
        if self._control_armed and self._response_id is None and (
            final or now - self._control_armed_at >= CONTROL_GRACE_SECONDS
        ):
            # The model said nothing after the supervisor's words: carry the action out anyway.
            self._begin_utterance()
            self._end_utterance()

    def _translate(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session.output_audio.delta":
            self._on_agent_fragment()
            self._out.append({"type": "response.output_audio.delta", "response_id": self._response_id,
                              "item_id": self._item_id, "content_index": 0, "delta": event.get("delta") or ""})
        elif kind == "session.output_transcript.delta":
            self._on_agent_fragment()
            delta = str(event.get("delta") or "")
            self._agent_text += delta
            self._out.append({"type": "response.output_audio_transcript.delta", "response_id": self._response_id,
                              "item_id": self._item_id, "delta": delta})
        elif kind == "session.input_transcript.delta":
            self._on_caller_fragment(str(event.get("delta") or ""))
        elif kind == "session.delegation.created":
            self._on_delegation(event.get("delegation") or {})
        elif kind == "session.usage.updated":
            self._report_usage(event.get("usage"))
        elif kind == "session.closed":
            self._report_usage(event.get("usage"))
            self._session_closed.set()
            if event.get("reason") == "expired" and not self._closed:
                self._out.append({"type": "error", "error": {"type": "live_error", "code": "session_expired",
                                                             "message": "the GPT-Live session expired"}})
        elif kind == "error":
            self._out.append({"type": "error", "error": dict(event.get("error") or {})})
        # session.started/updated, *.appended acknowledgements, info: nothing for the bridge

    def _on_agent_fragment(self) -> None:
        now = self._clock()
        if self._response_id is None:
            if self._caller_item is not None and not self._interrupted:
                self._end_caller_turn()  # the model answering means the caller's turn is over
            self._begin_utterance()
        self._last_agent_at = now

    def _begin_utterance(self) -> None:
        self._response_id, self._item_id = _new_id("resp_live"), _new_id("item_live")
        self._agent_text = ""
        self._interrupted = False
        self._response_controls, self._control_armed = self._control_armed, []
        self._out.append({"type": "response.created", "response": {"id": self._response_id,
                                                                   "status": "in_progress"}})

    def _end_utterance(self) -> None:
        response_id, item_id = self._response_id, self._item_id
        if response_id is None:
            return
        text = self._agent_text.strip()
        if text:
            self._out.append({"type": "response.output_audio_transcript.done", "response_id": response_id,
                              "item_id": item_id, "transcript": text})
        for name in self._response_controls:
            self._out.append({"type": "response.function_call_arguments.done", "response_id": response_id,
                              "call_id": _new_id("call_live"), "name": name, "arguments": "{}"})
        self._response_controls = []
        self._out.append({"type": "response.done", "response": {"id": response_id, "status": "completed"}})
        self._response_id = self._item_id = None
        self._agent_text = ""
        if self._interrupted and self._caller_item is not None:
            # The model stopped while the caller talked over it: a barge-in. Reported now, after the
            # utterance, so the bridge clears what is still queued and records what the caller heard.
            self._out.append({"type": "input_audio_buffer.speech_started", "item_id": self._caller_item})
        self._interrupted = False

    def _on_caller_fragment(self, delta: str) -> None:
        self._last_caller_at = self._clock()
        if self._caller_item is None:
            self._caller_item = _new_id("item_live")
            self._caller_text = ""
            if self._response_id is None:
                self._out.append({"type": "input_audio_buffer.speech_started", "item_id": self._caller_item})
            else:
                self._interrupted = True  # told to the bridge only if the model then stops (see _end_utterance)
        self._caller_text += delta
        self._out.append({"type": "conversation.item.input_audio_transcription.delta",
                          "item_id": self._caller_item, "content_index": 0, "delta": delta})

    def _end_caller_turn(self) -> None:
        item_id = self._caller_item
        if item_id is None:
            return
        text = self._caller_text.strip()
        if not (self._interrupted and self._response_id is not None):
            self._out.append({"type": "input_audio_buffer.speech_stopped", "item_id": item_id})
        # else: words over an utterance that went on (a backchannel, not a barge-in): kept, but no turn
        self._out.append({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                          "content_index": 0, "transcript": text})
        self._last_caller_turn = text or self._last_caller_turn
        self._caller_item = None
        self._caller_text = ""
        self._interrupted = False

    def _on_delegation(self, delegation: dict[str, Any]) -> None:
        if delegation.get("target") != "client":
            return
        delegation_id = str(delegation.get("id") or "")
        if not delegation_id:
            return
        self._end_caller_turn()  # the supervisor must see what the caller just said
        self._delegations.add(delegation_id)
        own = self._response_id is None
        if own:
            self._begin_utterance()
        self._out.append({
            "type": "response.function_call_arguments.done", "response_id": self._response_id,
            "call_id": delegation_id, "name": SUPERVISOR_TOOL,
            "arguments": json.dumps({"relevantContextFromLastUserMessage": self._last_caller_turn}),
        })
        if own:
            self._end_utterance()  # a delegation without words yet: the bridge starts the supervisor now

    def _report_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict) or self.on_usage is None:
            return
        total = float(usage.get("seconds") or 0)
        active = usage.get("active_seconds")
        paused = float(usage.get("paused_seconds") or 0)
        self.on_usage(float(active) if active is not None else max(0.0, total - paused), paused)

    # -- ending -------------------------------------------------------------------------------------------
    async def settle(self) -> None:
        """Ask Live to close and wait for `session.closed`: its final usage is what OpenAI bills."""
        if self._conn is None or self._closed or self._session_closed.is_set():
            return
        with contextlib.suppress(Exception):
            await self._send_live({"type": "session.close"})
            async with asyncio.timeout(CLOSE_WAIT_SECONDS):
                await self._session_closed.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task = self._connect_task
        if self._conn is None and task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        elif self._conn is None and task is not None and task.done() and not task.cancelled():
            if task.exception() is None:
                self._conn = task.result()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


class FallbackLink:
    """Live first; when its session can't be opened, the call goes on over Realtime (a short delay, no
    more: the Realtime link is connecting already). `on_fallback(reason)` lets the record say so."""

    def __init__(
        self,
        live: LiveLink,
        realtime: Callable[[], RealtimeLink],
        *,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self.live = live
        self._make_realtime = realtime
        self._realtime: RealtimeLink | None = None
        self._current: Link = live
        self.engine = "live"
        self.on_fallback = on_fallback

    async def wait_connected(self) -> None:
        try:
            await self.live.wait_connected()
        except LinkUnavailable as exc:
            await self.live.close()
            self.engine = "realtime"
            if self.on_fallback is not None:
                self.on_fallback(exc.reason)
            if self._realtime is None:
                self._realtime = self._make_realtime()
            self._current = self._realtime
            await self._realtime.start().wait_connected()
            return
        if self._realtime is not None:
            await self._realtime.close()
            self._realtime = None

    def prefetch_fallback(self) -> None:
        """Start the Realtime connect beside Live's, so a refusal costs no second connect."""
        if self._realtime is None:
            self._realtime = self._make_realtime().start()

    def request_call_control(self, name: str) -> None:
        if self._current is self.live:
            self.live.request_call_control(name)

    async def send(self, event: dict[str, Any]) -> None:
        await self._current.send(event)

    async def append_audio(self, chunk: bytes | str) -> None:
        await self._current.append_audio(chunk)

    def events(self) -> AsyncIterator[dict[str, Any]]:
        return self._current.events()

    async def settle(self) -> None:
        if self._current is self.live:
            await self.live.settle()

    async def close(self) -> None:
        await self.live.close()
        if self._realtime is not None:
            await self._realtime.close()
