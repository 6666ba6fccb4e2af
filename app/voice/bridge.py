"""CallBridge: one call, between a caller transport and a realtime link.

It knows nothing about where the caller comes from. Caller audio goes to the model untouched; model audio
goes to the caller untouched. Around that it handles barge-in, the receptionist's tools (the supervisor runs
as a task, off the audio path), call limits, per-turn latency, and the call record, which is finalised exactly
once however the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from app import metrics
from app.billing.pricing import from_realtime, from_transcription
from app.db.models import CallStatus, EventKind
from app.i18n.lines import Line
from app.i18n.lines import text as line_text
from app.voice.language import SET_LANGUAGE_TOOL, CallLanguage
from app.voice.prompts import END_CALL_TOOL, SUPERVISOR_TOOL, TRANSFER_TOOL
from app.voice.realtime import Link, LinkUnavailable
from app.voice.recorder import HEARTBEAT_SECONDS, CallRecorder, Ending
from app.voice.response_state import ResponseState, TurnMetrics
from app.voice.resume import ResumePoint, heard_part, restore_events, resume_response
from app.voice.supervisor import SupervisorAnswer
from app.voice.transport import AudioIn, CallerGone, CallerTransport, Dtmf, base64_bytes

log = logging.getLogger(__name__)

# Issue 16: what the service says itself comes from app.i18n.lines in the call's language; these are the English.
UNAVAILABLE_MESSAGE = line_text(Line.RECEPTIONIST_UNAVAILABLE, "en-US")
TROUBLE_MESSAGE = line_text(Line.TROUBLE, "en-US")
BENIGN_ERRORS = {"response_cancel_not_active"}
BUSY_ERROR = "conversation_already_has_active_response"
#: how long a call's end waits for a cancelled response's `response.done` (its usage)
SETTLE_SECONDS = 2.0

#: attempts at a new realtime session after a drop before the call goes to the fallback
RECONNECT_ATTEMPTS = 2
#: how long one attempt may take (connect + restore)
RECONNECT_TIMEOUT_SECONDS = 4.0
#: a link that drops again and again right after it was restored (an upstream accepting sessions and closing
#: them) would otherwise be reconnected forever, each time a new billed session and another resume line: past
#: this many reconnects in RECONNECT_WINDOW_SECONDS the call goes to the fallback instead
RECONNECTS_PER_WINDOW = 5
RECONNECT_WINDOW_SECONDS = 60.0

AskSupervisor = Callable[[str, str], Awaitable[SupervisorAnswer]]
#: a new, connecting link of the same kind (reconnects and roll-overs)
LinkFactory = Callable[[], Link]


@dataclass(frozen=True, slots=True)
class CallLimits:
    max_call_seconds: float = 600.0
    #: caller silence (after the agent finished speaking) before one "are you still there?"
    silence_prompt_seconds: float = 20.0
    #: further silence after that prompt before the goodbye
    silence_goodbye_seconds: float = 12.0
    #: longest wait for a goodbye to finish playing before hanging up anyway
    goodbye_grace_seconds: float = 12.0
    #: longest gap between writes of the call record (the sign of life housekeeping looks for)
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    #: a realtime session is rolled over to a fresh one (conversation restored) after this long, at the next
    #: quiet moment: OpenAI ends sessions at 60 minutes
    realtime_session_seconds: float = 55 * 60.0


class CallBridge:
    def __init__(
        self,
        *,
        transport: CallerTransport,
        link: Link,
        recorder: CallRecorder,
        ask_supervisor: AskSupervisor,
        session_update: dict[str, Any],
        greeting: str,
        limits: CallLimits,
        transfer_number: str | None = None,
        realtime_model: str = "gpt-realtime-2.1",
        transcription_model: str = "gpt-4o-mini-transcribe",
        clock: Callable[[], float] = time.monotonic,
        link_factory: LinkFactory | None = None,
        service_stopping: Callable[[], bool] | None = None,
        resume: ResumePoint | None = None,
        language: CallLanguage | None = None,
    ) -> None:
        self.transport = transport
        # Issue 16: the call's language (app.voice.language): switches, and the words of the service's own lines.
        self.language = language or CallLanguage([])
        self.link = link
        self._link_factory = link_factory
        self._service_stopping = service_stopping or (lambda: False)
        self._link_ready = asyncio.Event()  # clear while a new realtime session is being opened
        self._link_ready.set()
        self._link_generation = 0
        self._link_swapped = asyncio.Event()
        self._switching = False
        self.reconnects = 0
        self._reconnected_at: list[float] = []
        self.rollovers = 0
        # tool calls the model made whose output has not been sent: a new session must know them
        self._open_tool_calls: dict[str, tuple[str, str]] = {}
        self.recorder = recorder
        self._ask_supervisor = ask_supervisor
        self._session_update = session_update
        self._greeting = greeting
        self.limits = limits
        self._transfer_number = transfer_number
        # Issue 8: one transfer request per call, however often the model or the keypad asks (toll cost).
        self._transfer_requested = False
        self._realtime_model = realtime_model
        self._transcription_model = transcription_model
        self._clock = clock
        self._bpm = transport.bytes_per_ms

        self._ending: Ending | None = None
        self._done = asyncio.Event()
        self._finished = asyncio.Event()
        self._finish_task: asyncio.Future[Ending] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = clock()
        self._link_started = clock()
        self._winding_down = False  # a goodbye is under way: no more prompts, limits or tools

        # response / playback state
        self._response = ResponseState(clock)
        self._pending_tools: list[tuple[str, str, str]] = []
        self._supervisor_tasks: dict[str, asyncio.Task[SupervisorAnswer]] = {}

        # caller / turn state
        self._caller_speaking = False
        self._last_caller_activity = clock()
        self._silence_prompted = False
        self._speech_started_offset = 0
        self._turns = TurnMetrics(recorder.add_latency)
        self.truncations: list[dict[str, int | str]] = []

        self._flush_task: asyncio.Task[None] | None = None
        self._flush_again = False
        self._realtime_task: asyncio.Task[Any] | None = None
        self._last_flush_request = clock()
        # Issue 11 (app.voice.move): a call that moved here picks up where it was; one moving away is held.
        self._resume = resume
        self._held = False
        if resume is not None:
            self._started -= resume.elapsed_seconds
            self._turns.turn = resume.turn
            self._transfer_requested = resume.transfer_requested
            self._open_tool_calls = dict(resume.open_tool_calls)

    # -- lifecycle ----------------------------------------------------------------------------------------
    @property
    def ending(self) -> Ending | None:
        return self._ending

    def end(self, status: CallStatus, reason: str, failure: str | None = None) -> None:
        """Ask the call to end; the first reason wins."""
        if self._ending is None:
            self._ending = Ending(status=status.value, reason=reason, failure=failure)
            self._winding_down = True  # no prompts, limits or tools while the end is settled
            self._done.set()

    async def stop(self, reason: str = "service_restart") -> None:
        """End the call from outside (service shutdown) and wait until it is finalised."""
        self.end(CallStatus.FAILED, reason, "the service stopped during the call")
        await self._finished.wait()

    async def run(self) -> Ending:
        await self.transport.send_state("connecting")
        self._turns.call_started(self._clock())  # turn 0: the greeting's latency, from the call's start
        try:
            await self.link.wait_connected()
            for opening in self._opening():
                await self.link.send(opening)
        except LinkUnavailable as exc:
            await self._fall_back("ai_unavailable", self.language.line(Line.RECEPTIONIST_UNAVAILABLE))
            self.end(CallStatus.FAILED, "openai_unavailable", exc.reason)
        except Exception as exc:
            log.warning("realtime set-up failed: %r", exc)
            await self._fall_back("ai_unavailable", self.language.line(Line.RECEPTIONIST_UNAVAILABLE))
            self.end(CallStatus.FAILED, "openai_unavailable", f"realtime set-up failed ({type(exc).__name__})")
        else:
            if self._resume is None:
                self.recorder.add(EventKind.SYSTEM, "call started", {"channel": self.transport.channel})
            else:
                self.recorder.add(EventKind.SYSTEM, "call continued on this instance", {"move": "claimed"})
            self._spawn(self._pumps(), "pumps")
        try:
            await self._done.wait()
        except asyncio.CancelledError:
            # The handler itself is being cancelled (server shutdown, client task torn down): the call
            # must still be finalised, so finish in a task the cancellation can't reach, then re-raise.
            self.end(CallStatus.FAILED, "service_restart", "the service stopped during the call")
            await asyncio.shield(self._finish_once())
            raise
        return await asyncio.shield(self._finish_once())

    def _opening(self) -> list[dict[str, Any]]:
        if self._resume is not None:
            return self._resume.opening
        return [{"type": "session.update", "session": self._session_update},
                {"type": "response.create",
                 "response": {"instructions": f'Greet the caller by saying exactly: "{self._greeting}"'}}]

    # -- moving to another instance (issue 11; the move itself is app.voice.move) -------------------------
    def at_rest(self) -> bool:
        """Nobody is speaking, nothing is being generated, played or looked up: a call can be handed over
        here without cutting a word or a tool call."""
        return (self._ending is None and not self._winding_down and not self._switching and self._link_ready.is_set()
                and not (self._caller_speaking or self._response.active or self._supervisor_tasks
                         or self._open_tool_calls or self._pending_tools)
                and self._clock() >= self._response.audio_until)

    def must_not_be_cut(self) -> bool:
        """A tool call is open, a goodbye or transfer is under way, or a new realtime session is being opened:
        a hand-over now would lose it, however long the wait."""
        return bool(self._supervisor_tasks or self._open_tool_calls or self._pending_tools or self._winding_down
                    or self._switching)

    def hold(self, held: bool) -> None:
        """While held the caller's audio stops reaching the model and no prompt or limit fires: what is said
        from here on belongs to the instance the call moves to."""
        self._held = held
        self._winding_down = held

    def move_state(self) -> dict[str, Any]:
        return {"session_update": self._session_update, "turn": self._turns.turn,
                "transfer_requested": self._transfer_requested,
                "open_tool_calls": {k: list(v) for k, v in self._open_tool_calls.items()}}

    def _finish_once(self) -> asyncio.Future[Ending]:
        if self._finish_task is None:
            self._finish_task = asyncio.ensure_future(self._finish())
            self._finish_task.add_done_callback(lambda _t: self._finished.set())
        return self._finish_task

    async def _finish(self) -> Ending:
        ending = self._ending
        assert ending is not None
        current = asyncio.current_task()
        await self._settle_response()
        await self._settle_link()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for task in list(self._tasks):
            if task is not current:
                with contextlib.suppress(BaseException):
                    await task
        if self._flush_task is not None:
            with contextlib.suppress(BaseException):
                await self._flush_task
        ignored = self.transport.ignored_frames
        if ignored:
            self.recorder.add(EventKind.SYSTEM, f"ignored {ignored} malformed frames from the caller's side",
                              {"ignored_frames": ignored})
        await self.recorder.finalise(CallStatus(ending.status), ending.reason, ending.failure)
        if not ending.reason.startswith("caller_"):
            with contextlib.suppress(Exception):
                await self.transport.hang_up(ending.reason)
        with contextlib.suppress(Exception):
            await self.link.close()
        return ending

    async def _settle_response(self) -> None:
        """A response still being generated when the call ends (the caller hung up mid-answer) is cancelled,
        and its `response.done` awaited briefly: OpenAI bills what it generated all the same, so its usage
        and words belong in the record."""
        if not self._response.active or self._realtime_task is None or self._realtime_task.done():
            return
        with contextlib.suppress(Exception):
            await self._send({"type": "response.cancel"})
            async with asyncio.timeout(SETTLE_SECONDS):
                await self._response.wait_idle()

    async def _settle_link(self) -> None:
        """A link with accounting to collect at the end (GPT-Live's final usage comes with `session.closed`)
        gets a bounded moment for it before the record is closed."""
        settle = getattr(self.link, "settle", None)
        if settle is None or self._realtime_task is None or self._realtime_task.done():
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SETTLE_SECONDS):
                await settle()

    async def _pumps(self) -> None:
        """The call's three loops in one task group: cancelled together when the call ends (each is guarded, so
        one failing ends the call through `end` rather than tearing down the others mid-settle)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._guard(self._caller_pump(), "caller-pump"), name="caller-pump")
            self._realtime_task = group.create_task(self._guard(self._realtime_pump(), "realtime-pump"),
                                                    name="realtime-pump")
            group.create_task(self._guard(self._watchdog(), "watchdog"), name="watchdog")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, guarded: bool = True) -> asyncio.Task[Any]:
        """The one way the call starts a task (the flush aside, which must outlive the cancel at the end):
        every one is cancelled and awaited when the call is finalised. Unguarded: the caller awaits the result
        and handles its failure (the supervisor's answer)."""
        task = asyncio.create_task(self._guard(coro, name) if guarded else coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any], name: str) -> Any:
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("call task %s failed", name)
            with contextlib.suppress(Exception):
                await self.transport.announce(self.language.line(Line.TROUBLE))
            self.end(CallStatus.FAILED, "error", f"{name} failed: {type(exc).__name__}: {exc}"[:500])
            return None

    async def _send(self, event: dict[str, Any]) -> None:
        """Send to the current realtime session. While one is being replaced this waits for the new one; a
        send that fails because the socket just dropped is retried once on the session that replaces it."""
        for _attempt in range(2):
            await self._link_ready.wait()
            generation = self._link_generation
            try:
                await self.link.send(event)
                return
            except Exception as exc:
                if self._ending is not None:
                    return
                log.info("realtime send failed (%s); waiting for the next session", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECONNECT_ATTEMPTS * RECONNECT_TIMEOUT_SECONDS + 2):
                        while self._link_generation == generation and self._ending is None:
                            self._link_swapped.clear()
                            await self._link_swapped.wait()

    def _request_flush(self) -> None:
        """Write the finished turn in the background: the audio path never waits on the database."""
        self._last_flush_request = self._clock()
        if self._flush_task is not None and not self._flush_task.done():
            self._flush_again = True
            return

        async def flush() -> None:
            while True:
                self._flush_again = False
                await self.recorder.flush()
                if not self._flush_again:
                    return

        self._flush_task = asyncio.create_task(flush(), name="call-flush")

    # -- caller side --------------------------------------------------------------------------------------
    async def _caller_pump(self) -> None:
        async for event in self.transport.events():
            if isinstance(event, AudioIn):
                if self._held or not self._link_ready.is_set():
                    continue  # between sessions: the resume line asks the caller to say it again
                try:
                    await self.link.append_audio(event.payload)
                except Exception:  # the socket just dropped: the realtime pump reconnects
                    if self._link_factory is None:
                        raise
            elif isinstance(event, Dtmf):
                self.recorder.add(EventKind.SYSTEM, f"caller pressed {event.digit}", {"dtmf": event.digit})
                if event.digit == "0" and not self._winding_down:
                    if self._transfer_number:
                        self._spawn(self._transfer(None), "dtmf-transfer")
                    else:
                        self._spawn(self._ask_for_person(), "dtmf-person")
            elif isinstance(event, CallerGone):
                if event.reason == "disconnected" and self._service_stopping():
                    # granian closes every socket on SIGTERM before the app hears of the shutdown: a drop while
                    # this process is draining or stopping is the restart, not the caller's network.
                    self.end(CallStatus.FAILED, "service_restart", "the service restarted during the call")
                    return
                status = CallStatus.COMPLETED if self.recorder.caller_turns else CallStatus.ABANDONED
                self.end(status, f"caller_{event.reason}")
                return
        self.end(CallStatus.COMPLETED, "caller_gone")

    # -- realtime side ------------------------------------------------------------------------------------
    async def _realtime_pump(self) -> None:
        while True:
            link = self.link
            async for event in link.events():
                if link is not self.link:
                    break  # rolled over: the old session's last events belong to nobody
                await self._on_event(event)
            if self._ending is not None:
                return
            if link is not self.link:
                continue
            if self._link_factory is None:
                await self.transport.announce(self.language.line(Line.TROUBLE))
                self.end(CallStatus.FAILED, "realtime_closed", "the realtime connection closed during the call")
                return
            if not await self._reconnect():
                return

    # -- a new realtime session mid-call ------------------------------------------------------------------
    async def _open_restored(self) -> Link:
        assert self._link_factory is not None
        link = self._link_factory()
        try:
            async with asyncio.timeout(RECONNECT_TIMEOUT_SECONDS):
                await link.wait_connected()
                for event in restore_events(self._session_update, self.recorder.turns, self._open_tool_calls):
                    await link.send(event)
        except BaseException:
            with contextlib.suppress(Exception):
                await link.close()
            raise
        return link

    def _swap(self, link: Link) -> Link:
        old, self.link = self.link, link
        self._link_started = self._clock()
        self._link_generation += 1
        self._link_swapped.set()
        self._link_ready.set()
        return old

    async def _keep_what_was_heard(self) -> dict[str, Any]:
        """The answer being played when the session dropped: playback stops, and the words the caller heard
        go into the transcript (the rest was never heard, and the new session must not think it was said)."""
        item_id, partial = self._response.playing_item, self._response.partial.strip()
        if item_id is None:
            return {}
        produced = self.produced_ms(item_id)
        if self.transport.heard_ms(item_id) + 20 < produced:
            await self.transport.clear()
        heard = min(self.transport.heard_ms(item_id), produced)
        kept = heard_part(partial, heard, produced)
        if kept:
            self.recorder.add(EventKind.AGENT, kept, {"item_id": item_id, "truncated": True, "heard_ms": heard,
                                                      "produced_ms": produced})
        return {"item_id": item_id, "heard_ms": heard, "produced_ms": produced}

    def _forget_response(self) -> None:
        self._response.forget()
        self._caller_speaking = False

    async def _fall_back(self, reason: str, apology: str) -> None:
        """The AI can't answer: the channel's fallback (forward or voicemail) if it has one, else an apology."""
        what = await self.transport.fall_back(reason)
        if what is None:
            await self.transport.announce(apology)
            return
        self.recorder.add(EventKind.SYSTEM, f"sent to the fallback: {what}", {"fallback": what, "reason": reason})

    async def _reconnect(self) -> bool:
        """The realtime socket dropped (or the session expired) mid-call: open a new session, restore the call
        in it and say a short resume line. False when it failed RECONNECT_ATTEMPTS times (the call has then
        gone to the fallback)."""
        self._link_ready.clear()
        self._switching = True
        lost_at = self._clock()
        cut = await self._keep_what_was_heard()
        leftover, self._pending_tools = self._pending_tools, []
        self._forget_response()
        self.recorder.add(EventKind.SYSTEM, "realtime connection lost: reconnecting", {"gap": "started", **cut})
        self._request_flush()
        with contextlib.suppress(Exception):
            await self.link.close()
        self._reconnected_at = [t for t in self._reconnected_at if lost_at - t < RECONNECT_WINDOW_SECONDS]
        if len(self._reconnected_at) >= RECONNECTS_PER_WINDOW:
            self._switching = False
            self._link_ready.set()
            self.recorder.add(EventKind.ERROR, "realtime connection keeps dropping",
                              {"reconnects": len(self._reconnected_at), "window_seconds": RECONNECT_WINDOW_SECONDS})
            await self._fall_back("ai_lost", self.language.line(Line.TROUBLE))
            self.end(CallStatus.FAILED, "realtime_lost", "the realtime connection kept dropping")
            return False
        failures: list[str] = []
        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            if self._ending is not None:
                return False
            try:
                link = await self._open_restored()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = exc.reason if isinstance(exc, LinkUnavailable) else type(exc).__name__
                failures.append(reason)
                log.warning("realtime reconnect attempt %d failed: %s", attempt, reason)
                continue
            self._swap(link)
            self._switching = False
            self.reconnects += 1
            self._reconnected_at.append(self._clock())
            metrics.realtime_reconnects.inc()
            gap_ms = int((self._clock() - lost_at) * 1000)
            self.recorder.add(EventKind.SYSTEM, "realtime connection restored",
                              {"gap": "ended", "gap_ms": gap_ms, "attempt": attempt})
            self._request_flush()
            waiting = any(name == SUPERVISOR_TOOL for _c, name, _a in leftover) or bool(self._supervisor_tasks)
            await self._send(resume_response(self.language.line(Line.RESUME_WAITING if waiting else Line.RESUME)))
            for call_id, name, _arguments in leftover:
                self._run_tool(call_id, name)
            return True
        self._switching = False
        self._link_ready.set()
        self.recorder.add(EventKind.ERROR, "realtime connection could not be restored",
                          {"attempts": RECONNECT_ATTEMPTS, "failures": failures})
        await self._fall_back("ai_lost", self.language.line(Line.TROUBLE))
        self.end(CallStatus.FAILED, "realtime_lost", "the realtime connection was lost and could not be restored")
        return False

    async def _rollover(self) -> None:
        """Replace a long-lived realtime session before OpenAI's limit, at a quiet moment: the new session is
        opened and restored while the old one still serves the call, then swapped in; the caller hears nothing."""
        self._switching = True
        try:
            link = await self._open_restored()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("realtime roll-over failed (%r); trying again later", exc)
            self._link_started = self._clock() - self.limits.realtime_session_seconds + 30
            self._switching = False
            return
        if self._ending is not None or self._response.active or self._caller_speaking:
            with contextlib.suppress(Exception):
                await link.close()  # something started meanwhile: keep the old session, try again soon
            self._link_started = self._clock() - self.limits.realtime_session_seconds + 5
            self._switching = False
            return
        old = self._swap(link)
        self._switching = False
        self.rollovers += 1
        self.recorder.add(EventKind.SYSTEM, "realtime session rolled over",
                          {"after_s": round(self.limits.realtime_session_seconds)})
        with contextlib.suppress(Exception):
            await old.close()

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "response.output_audio.delta":
            await self._on_audio(event)
        elif kind == "input_audio_buffer.speech_started":
            await self._on_speech_started(event)
        elif kind == "input_audio_buffer.speech_stopped":
            self._caller_speaking = False
            self._last_caller_activity = self._clock()
            self._turns.caller_stopped(self._clock())
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = str(event.get("transcript") or "").strip()
            self.recorder.add_usage("transcription", self._transcription_model, from_transcription(event.get("usage")))
            if text:
                self.recorder.add(EventKind.CALLER, text, {"item_id": event.get("item_id")},
                                  offset_ms=self._speech_started_offset)
                await self.transport.send_caption("caller", text, final=True)
                if switch := self.language.heard(event):
                    self._spawn(self._send_all(switch), "language")
            self._request_flush()
        elif kind == "conversation.item.input_audio_transcription.failed":
            error = event.get("error") or {}
            self.recorder.add(EventKind.ERROR, "caller speech could not be transcribed",
                              {"source": "transcription", "code": error.get("code"), "message": error.get("message")})
        elif kind == "conversation.item.input_audio_transcription.delta":
            await self.transport.send_caption("caller", str(event.get("delta") or ""), final=False)
        elif kind == "response.created":
            response = event.get("response") or {}
            self._response.created(response.get("id"))
        elif kind == "response.output_audio_transcript.delta":
            self._response.partial += str(event.get("delta") or "")
            await self.transport.send_caption("agent", self._response.partial, final=False)
        elif kind == "response.output_audio_transcript.done":
            text = str(event.get("transcript") or "").strip()
            self._response.partial = ""  # recorded whole: nothing partial left to keep if the socket drops now
            if text:
                self.recorder.add(EventKind.AGENT, text, {"item_id": event.get("item_id")})
                await self.transport.send_caption("agent", text, final=True)
        elif kind == "response.function_call_arguments.done":
            self._on_tool_call(str(event.get("call_id")), str(event.get("name")), str(event.get("arguments") or ""))
        elif kind == "response.output_audio.done":
            await self.transport.audio_done()
        elif kind == "response.done":
            await self.transport.audio_done()
            await self._on_response_done(event.get("response") or {})
        elif kind == "error":
            self._on_error(event.get("error") or {})

    async def _on_audio(self, event: dict[str, Any]) -> None:
        if self._response.is_muted(event.get("response_id")):
            return  # the caller interrupted this response; its remaining audio must not play
        item_id = str(event.get("item_id"))
        delta = event.get("delta")
        if not delta or not isinstance(delta, str):
            return
        # The base64 goes to the caller's transport as it came: a channel that speaks it (Twilio) sends the very
        # string, so only its length is read here.
        nbytes = base64_bytes(delta)
        now = self._clock()
        if self._response.playing_item != item_id:
            self._response.playing_item = item_id
            await self.transport.send_state("speaking")
        self._response.produced(item_id, nbytes)
        await self.transport.send_audio(item_id, delta)
        self._response.audio_until = max(self._response.audio_until, now) + nbytes / self._bpm / 1000
        self._turns.agent_audio(now)

    def produced_ms(self, item_id: str) -> int:
        return self._response.produced_ms(item_id, self._bpm)

    @property
    def produced_bytes(self) -> dict[str, int]:
        return self._response.produced_bytes

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        self._caller_speaking = True
        self._silence_prompted = False
        self._last_caller_activity = self._clock()
        self._speech_started_offset = self.recorder.offset_ms()
        item_id = self._response.playing_item
        if item_id is None:
            return
        produced = self.produced_ms(item_id)
        if self.transport.heard_ms(item_id) + 20 >= produced and not self._response.active:
            return  # everything produced has played: nothing to interrupt
        await self.transport.clear()
        heard = self.transport.heard_ms(item_id)
        audio_end_ms = truncation_point(heard, produced)
        await self._send(
            {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
             "audio_end_ms": audio_end_ms}
        )
        self.truncations.append({"item_id": item_id, "audio_end_ms": audio_end_ms, "produced_ms": produced,
                                 "heard_ms": heard})
        self.recorder.add(EventKind.SYSTEM, "caller interrupted",
                          {"item_id": item_id, "audio_end_ms": audio_end_ms, "produced_ms": produced})
        self._response.playing_item = None
        self._response.audio_until = self._clock()
        if self._response.active:
            self._response.muted = self._response.last_id
            await self._send({"type": "response.cancel"})
        await self.transport.send_state("listening")

    def _on_tool_call(self, call_id: str, name: str, arguments: str) -> None:
        self.recorder.add(EventKind.TOOL_CALL, name, {"name": name, "arguments": arguments, "call_id": call_id,
                                                      "source": "receptionist"})
        self._pending_tools.append((call_id, name, arguments))
        self._open_tool_calls[call_id] = (name, arguments)
        if name == SUPERVISOR_TOOL:
            # Start thinking now, while the filler plays; the answer is sent once the response is over.
            try:
                context = str(json.loads(arguments or "{}").get("relevantContextFromLastUserMessage", ""))
            except (ValueError, AttributeError):
                context = ""
            self._supervisor_tasks[call_id] = self._spawn(
                self._ask_supervisor(self.recorder.transcript, context), "supervisor", guarded=False)

    async def _on_response_done(self, response: dict[str, Any]) -> None:
        self._response.done()
        if response.get("usage"):
            self.recorder.add_usage("realtime", self._realtime_model, from_realtime(response["usage"]))
        status = response.get("status")
        if status == "failed":
            details = response.get("status_details") or {}
            self.recorder.add(EventKind.ERROR, "realtime response failed", {"details": details})
        tools, self._pending_tools = self._pending_tools, []
        if self._ending is not None:
            return  # the call is over: nothing more is asked of the model
        if self._response.create_after_done:
            self._response.create_after_done = False
            await self._send({"type": "response.create"})
        for call_id, name, _arguments in tools:
            self._run_tool(call_id, name)
        if not tools and not self._caller_speaking:
            await self.transport.send_state("listening")
        self._request_flush()

    def _run_tool(self, call_id: str, name: str) -> None:
        if name == SUPERVISOR_TOOL:
            if call_id in self._supervisor_tasks:
                self._spawn(self._deliver_supervisor(call_id), "supervisor-answer")
        elif name == END_CALL_TOOL:
            self._spawn(self._end_after_goodbye(), "end-call")
        elif name == TRANSFER_TOOL:
            self._spawn(self._transfer(call_id), "transfer")
        elif name == SET_LANGUAGE_TOOL:
            self._spawn(self._set_language(call_id), "set-language")
        else:
            self._spawn(self._tool_output(call_id, {"error": {"code": "unknown_tool", "message": f"no tool {name}"}}),
                        "unknown-tool")

    def _on_error(self, error: dict[str, Any]) -> None:
        code = str(error.get("code") or "")
        metrics.openai_errors.labels(code or "unknown").inc()
        message = str(error.get("message") or "")
        if code in BENIGN_ERRORS:
            return
        if code == BUSY_ERROR:
            # A caller turn started a response just before ours: ask again once that one is done, so a
            # supervisor answer or a goodbye is never dropped.
            self._response.create_after_done = True
            return
        log.warning("realtime error %s: %s", code, message)
        self.recorder.add(EventKind.ERROR, message or code, {"source": "realtime", "code": code,
                                                             "type": error.get("type")})
        if code == "session_expired" and self._link_factory is None:
            self.end(CallStatus.FAILED, "realtime_session_expired", message or "the realtime session expired")
        # With a link factory an expired session is a dropped one: OpenAI closes the socket next, and the
        # realtime pump opens a new session with the call restored.

    async def _tool_output(self, call_id: str, output: dict[str, Any], *, respond: bool = True) -> None:
        await self._response.wait_idle()
        self._open_tool_calls.pop(call_id, None)
        await self._send(
            {"type": "conversation.item.create",
             "item": {"type": "function_call_output", "call_id": call_id, "output": json.dumps(output)}}
        )
        if respond:
            await self._send({"type": "response.create"})

    async def _send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self._send(event)

    async def _set_language(self, call_id: str) -> None:
        output, events = self.language.run_tool(self._open_tool_calls.get(call_id, ("", ""))[1])
        await self._response.wait_idle()
        await self._send_all(events)  # the new instructions first: the answer after the output speaks them
        await self._tool_output(call_id, output)

    async def _deliver_supervisor(self, call_id: str) -> None:
        task = self._supervisor_tasks.pop(call_id)
        turn = self._turns.turn
        answer = await task
        self.recorder.add_latency({"turn": turn, "supervisor_ms": answer.ms})
        self.recorder.add(EventKind.TOOL_RESULT, SUPERVISOR_TOOL,
                          {"name": SUPERVISOR_TOOL, "result": {"nextResponse": answer.text}, "ok": answer.ok,
                           "ms": answer.ms})
        self._request_flush()
        if self._winding_down:
            return
        self._turns.answer_asked(turn, self._clock())
        await self._tool_output(call_id, {"nextResponse": answer.text})

    async def _end_after_goodbye(self) -> None:
        self._winding_down = True
        await self.transport.wait_played(self.limits.goodbye_grace_seconds)
        self.end(CallStatus.COMPLETED, "goodbye")

    async def _ask_for_person(self) -> None:
        """Keypad 0 with no one to transfer to: the receptionist hears it and offers a message instead."""
        await self._response.wait_idle()
        await self._send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "(The caller pressed 0 on the keypad to reach a person.)"}]}})
        await self._send({"type": "response.create"})

    async def _transfer(self, call_id: str | None) -> None:
        number = self._transfer_number
        if number and self._transfer_requested:
            if call_id is not None:
                await self._tool_output(call_id, {"transferred": False, "message": "A transfer was already tried on "
                                                  "this call; it can't be tried again. Offer to take a message."})
            return
        if number:
            self._transfer_requested = True
            await self.transport.wait_played(5.0)
            if await self.transport.transfer(number):
                self.recorder.add(EventKind.SYSTEM, f"transferred to {number}", {"number": number})
                self.end(CallStatus.TRANSFERRED, "transferred")
                return
        if call_id is not None:
            reason = (
                "This line cannot transfer calls (it is a browser test call)."
                if self.transport.channel == "browser"
                else "No one is available to take the call right now."
            )
            await self._tool_output(call_id, {"transferred": False, "message": reason + " Explain that briefly "
                                              "and offer to take a message."})

    async def _say_goodbye_and_end(self, reason: str, instructions: str) -> None:
        self._winding_down = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await self._response.wait_idle()
        self._response.expect_finish()
        await self._send({"type": "response.create", "response": {"instructions": instructions,
                                                                   "tool_choice": "none"}})
        deadline = self._clock() + self.limits.goodbye_grace_seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.goodbye_grace_seconds):
                await self._response.wait_finished()
        await self.transport.wait_played(max(0.5, deadline - self._clock()))
        self.end(CallStatus.COMPLETED, reason)

    # -- limits -------------------------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            now = self._clock()
            if now - self._last_flush_request >= self.limits.heartbeat_seconds:
                self._request_flush()  # a long turn or a quiet line still shows the call is alive
            if self._winding_down:
                continue
            if (self._link_factory is not None and not self._switching and self._link_ready.is_set()
                    and now - self._link_started >= self.limits.realtime_session_seconds
                    and not (self._caller_speaking or self._response.active or self._supervisor_tasks
                             or self._open_tool_calls) and now >= self._response.audio_until):
                self._switching = True
                self._spawn(self._rollover(), "realtime-rollover")
            if now - self._started >= self.limits.max_call_seconds:
                self._winding_down = True
                self.recorder.add(EventKind.SYSTEM, "maximum call length reached",
                                  {"max_call_seconds": self.limits.max_call_seconds})
                self._spawn(self._say_goodbye_and_end(
                    "max_duration",
                    "The call has reached its time limit. Say exactly: "
                    f'"{self.language.line(Line.TIME_LIMIT_GOODBYE)}"',
                ), "max-duration")
                continue
            busy = self._caller_speaking or self._response.active or bool(self._supervisor_tasks)
            if busy or now < self._response.audio_until:
                continue
            quiet = now - max(self._last_caller_activity, self._response.audio_until)
            if not self._silence_prompted and quiet >= self.limits.silence_prompt_seconds:
                self._silence_prompted = True
                self.recorder.add(EventKind.SYSTEM, "caller silent: prompting", {"quiet_s": round(quiet, 1)})
                self._last_caller_activity = now
                await self._send({"type": "response.create", "response": {
                    "instructions": "The caller has been quiet for a while. Say exactly: "
                                    f'"{self.language.line(Line.STILL_THERE)}"',
                    "tool_choice": "none"}})
            elif self._silence_prompted and quiet >= self.limits.silence_goodbye_seconds:
                self._winding_down = True
                self.recorder.add(EventKind.SYSTEM, "caller silent: ending call", {"quiet_s": round(quiet, 1)})
                self._spawn(self._say_goodbye_and_end(
                    "silence",
                    f'The caller has not answered. Say exactly: "{self.language.line(Line.SILENCE_GOODBYE)}"',
                ), "silence-goodbye")


def truncation_point(heard_ms: int, produced_ms: int) -> int:
    """Where to cut an interrupted agent item: what the caller heard, never past what the model produced
    (a longer value is refused by the API and can leave the assistant silent for the rest of the call)."""
    return max(0, min(int(heard_ms), int(produced_ms)))
