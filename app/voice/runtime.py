"""Process-wide call machinery, on `app.state.runtime`: prewarmed realtime links, live bridges, the
job worker (summaries and every other kind). Started and stopped with the app; on stop every live call is finalised."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from uuid import UUID

from litestar import Litestar
from openai import AsyncOpenAI

from app import metrics
from app.background import BackgroundLoop
from app.db.engine import Database
from app.db.models import Business, Call, EventKind, Session
from app.db.services import BusinessScope
from app.i18n.languages import Language
from app.jobs import JobQueue
from app.settings import Settings
from app.tools import ToolContext
from app.voice import lifecycle
from app.voice.bridge import CallBridge, CallLimits
from app.voice.language import SET_LANGUAGE_TOOL, CallLanguage, set_language_tool
from app.voice.live import (
    CALL_CONTROL_NOTE,
    FallbackLink,
    LiveLink,
    call_control_tools,
    live_instructions,
    live_session_config,
)
from app.voice.move import ResumedCall, move_call, moved_stream_url, somewhere_to_go
from app.voice.prompts import (
    TRANSFER_TOOL,
    CallerContext,
    greeting_for,
    session_config,
    supervisor_instructions,
)
from app.voice.realtime import LinkUnavailable, RealtimeLink, connection_options, openai_client
from app.voice.recorder import CallRecorder, Ending
from app.voice.retention import retention_pass
from app.voice.sdk_warmup import warm_openai_sdk
from app.voice.sessions import caller_context
from app.voice.summary import Summaries
from app.voice.supervisor import FALLBACK, Supervisor, SupervisorAnswer
from app.voice.tokens import TokenIssuer
from app.voice.transport import CallerTransport

log = logging.getLogger(__name__)

PREWARM_TTL_SECONDS = 30.0
#: Twilio opens the media stream about a second after the webhook's answer
PREWARM_CHECK_SECONDS = 5.0
SHUTDOWN_GRACE_SECONDS = 10.0
HOUSEKEEPING_SECONDS = 60.0


class Telephony(Protocol):
    """What the call runtime asks of the phone side. `app.telephony.line.PhoneLine` implements it and is handed
    in where the app is put together, so `voice` names no vendor and imports point telephony -> voice only."""

    def transfer_number(self, business: Business) -> str | None:
        """Where this business's calls may be put through to now (None: no transfers)."""
        ...


class CallRuntime:
    def __init__(self, settings: Settings, db: Database, jobs: JobQueue | None = None, *,
                 telephony: Telephony | None = None) -> None:
        self.settings = settings
        self.db = db
        #: None: a runtime without a phone side (no transfers); set by app.telephony.line.start_telephony
        self.telephony = telephony
        # The process's one job worker: the call summaries are one of its kinds; other rooms register theirs.
        self.jobs = jobs or JobQueue(db)
        self.issuer = TokenIssuer(settings.session_secrets)
        self._prewarmed: dict[UUID, tuple[RealtimeLink, asyncio.TimerHandle]] = {}
        #: what a channel read for a call at webhook time, while Twilio was still opening its stream
        self._prepared: dict[UUID, asyncio.Task[Any]] = {}
        self._checks: set[asyncio.Task[None]] = set()
        self.bridges: set[CallBridge] = set()
        #: set by a drain (POST /ops/drain) before a planned restart: health answers "draining" so the load
        #: balancer sends new calls elsewhere, and a call cut when the process then stops is a service restart
        self.draining = False
        self._stopping = False
        self._drain_task: asyncio.Task[int] | None = None
        self._move_task: asyncio.Task[None] | None = None
        self._supervisor_client: AsyncOpenAI | None = None
        self._realtime_client: AsyncOpenAI | None = None
        self._summaries_client: AsyncOpenAI | None = None
        self._housekeeping = BackgroundLoop("call-housekeeping", self._housekeeping_pass, HOUSEKEEPING_SECONDS)
        Summaries(db, settings, self.summary_client_factory()).register(self.jobs)

    def summary_client_factory(self) -> Callable[[], AsyncOpenAI] | None:
        """The client for after-call work (summaries, voicemail transcripts); None without an OpenAI key."""
        return self._summary_client if self.settings.openai_api_key else None

    def _summary_client(self) -> AsyncOpenAI:
        if self._summaries_client is None:
            self._summaries_client = openai_client(self.settings, timeout=60.0, max_retries=1)
        return self._summaries_client

    def realtime_client(self) -> AsyncOpenAI | None:
        """One client for every realtime connect (None without a key: each link then fails plainly)."""
        if self._realtime_client is None and self.settings.openai_api_key:
            self._realtime_client = openai_client(self.settings)
        return self._realtime_client

    def supervisor_client(self) -> AsyncOpenAI:
        if self._supervisor_client is None:
            # Retries would only eat into the supervisor's own time bound.
            self._supervisor_client = openai_client(
                self.settings, timeout=float(self.settings.supervisor_timeout_seconds), max_retries=0
            )
        return self._supervisor_client

    # -- prewarm ------------------------------------------------------------------------------------------
    def prewarm(self, session_id: UUID, prepare: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Open the realtime connection now so the greeting isn't delayed by the connect. `prepare` reads what
        the call's set-up needs (its business, the caller's context) now too: a stream that lands in this
        process takes it with `take_prepared` instead of reading it between `start` and the greeting."""
        if not self.settings.openai_api_key or session_id in self._prewarmed:
            return
        if prepare is not None:
            self._prepared[session_id] = task = asyncio.get_running_loop().create_task(prepare())
            # A stream that never comes (or lands elsewhere) leaves the task unawaited: its failure is not news.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        link = RealtimeLink(self.settings, self.realtime_client()).start()
        handle = asyncio.get_running_loop().call_later(PREWARM_TTL_SECONDS, self._expire, session_id)
        self._prewarmed[session_id] = (link, handle)
        # Issue 10: with several workers or instances the stream often lands elsewhere (and connects there);
        # once its session is claimed by someone else, this link is closed instead of idling out the TTL.
        asyncio.get_running_loop().call_later(PREWARM_CHECK_SECONDS, self._check_prewarmed, session_id)

    def _check_prewarmed(self, session_id: UUID) -> None:
        if session_id in self._prewarmed and not self._stopping:
            task = asyncio.get_running_loop().create_task(self._drop_if_claimed(session_id))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _drop_if_claimed(self, session_id: UUID) -> None:
        try:
            claimed = await lifecycle.session_claimed(self.db, session_id)
        except Exception:
            log.warning("prewarm check for session %s failed; the link idles out its TTL", session_id)
            return
        if claimed:  # still here and claimed: by another process (a stream here would have taken it)
            await self.drop_prewarmed(session_id)

    def take_prepared(self, session_id: UUID) -> asyncio.Task[Any] | None:
        """What `prewarm(prepare=…)` read for this session in this process (done, or still reading), once."""
        return self._prepared.pop(session_id, None)

    def _expire(self, session_id: UUID) -> None:
        self._forget_prepared(session_id)
        entry = self._prewarmed.pop(session_id, None)
        if entry is not None:
            asyncio.get_running_loop().create_task(entry[0].close())

    def _forget_prepared(self, session_id: UUID) -> None:
        task = self._prepared.pop(session_id, None)
        if task is not None:
            task.cancel()

    async def drop_prewarmed(self, session_id: UUID) -> None:
        self._forget_prepared(session_id)
        entry = self._prewarmed.pop(session_id, None)
        if entry is not None:
            entry[1].cancel()
            await entry[0].close()

    def new_link(self) -> RealtimeLink:
        """A fresh, connecting realtime link (a call's reconnect or roll-over)."""
        return RealtimeLink(self.settings, self.realtime_client()).start()

    def take_link(self, session_id: UUID) -> RealtimeLink:
        entry = self._prewarmed.pop(session_id, None)
        if entry is not None:
            entry[1].cancel()
            return entry[0]
        return RealtimeLink(self.settings, self.realtime_client()).start()

    # -- calls --------------------------------------------------------------------------------------------
    async def run_call(
        self,
        session: Session,
        call: Call,
        transport: CallerTransport,
        *,
        greet: Callable[[Business, CallerContext], str] | None = None,
        resumed: ResumedCall | None = None,
        purpose: str = "",
        known: tuple[Business, CallerContext] | None = None,
    ) -> Ending:
        """Run a claimed session's call (started by the claim, or moved here) to its end over `transport`; the
        call record is finalised.
        `greet` words the greeting for this caller (the phone greets known callers by name); `resumed` is a
        call that moved here from a draining instance (app.voice.move), carried on instead of started;
        `purpose` says why the business placed the call, on an outbound call (issue 16); `known` is the
        session's business and caller context when the channel has read them already (else they are read)."""
        began = time.perf_counter()
        bridge = await self.build_bridge(session, call, transport, greet=greet, resumed=resumed, purpose=purpose,
                                         known=known)
        metrics.call_setup_ms.labels("prepare").observe((time.perf_counter() - began) * 1000)
        self.bridges.add(bridge)
        metrics.calls_started.labels(transport.channel).inc()
        metrics.live_calls.inc()
        try:
            return await bridge.run()
        finally:
            self.bridges.discard(bridge)
            metrics.live_calls.dec()

    async def build_bridge(
        self,
        session: Session,
        call: Call,
        transport: CallerTransport,
        *,
        greet: Callable[[Business, CallerContext], str] | None = None,
        limits: CallLimits | None = None,
        resumed: ResumedCall | None = None,
        purpose: str = "",
        known: tuple[Business, CallerContext] | None = None,
    ) -> CallBridge:
        """Wire the started call's bridge (not yet running). `limits` defaults to the business's maximum call
        length with the standard silence handling."""
        link = self.take_link(session.id)
        try:
            return await self._wire_bridge(session, call, transport, link, greet=greet, limits=limits,
                                           resumed=resumed, purpose=purpose, known=known)
        except BaseException as exc:
            # A claimed session whose call never runs is closed, with its reason, and its realtime link with it,
            # whatever failed (the database, the caller's context, a bug): shielded, so a cancellation (the
            # socket's handler torn down) can't skip it.
            reason = f"the call could not start ({type(exc).__name__})"
            await asyncio.shield(self._abandon(session.id, link, reason))
            raise

    async def abandon(self, session_id: UUID, reason: str) -> None:
        """Close a claimed session that will get no call (a channel mismatch, an error before the call was
        built): the session ends `failed` with `reason`, its prewarmed link is closed."""
        await asyncio.shield(self._abandon(session_id, None, reason))

    async def _abandon(self, session_id: UUID, link: RealtimeLink | None, reason: str) -> None:
        try:
            if link is not None:
                await link.close()
            await self.drop_prewarmed(session_id)
        finally:
            try:
                await lifecycle.fail_unstarted(self.db, session_id, reason)
            except Exception:
                log.exception("could not close session %s (%s)", session_id, reason)

    async def _wire_bridge(
        self,
        session: Session,
        call: Call,
        transport: CallerTransport,
        link: RealtimeLink,
        *,
        greet: Callable[[Business, CallerContext], str] | None,
        limits: CallLimits | None,
        resumed: ResumedCall | None = None,
        purpose: str = "",
        known: tuple[Business, CallerContext] | None = None,
    ) -> CallBridge:
        scope = BusinessScope(self.db.session_maker, session.business_id)
        if known is None:
            business = await scope.business()
            known = business, await caller_context(self.db, business, session.caller_phone)
        business, caller = known
        recorder = CallRecorder(
            self.db,
            call_id=call.id,
            session_id=session.id,
            business_id=business.id,
            started_at=call.started_at,
            price_overrides=self.settings.price_overrides,
            on_finalised=self.jobs.poke,
        )
        if purpose:
            caller = dataclasses.replace(caller, purpose=purpose)
        tools = ToolContext(scope=scope, business=business, call_id=call.id, caller_phone=session.caller_phone)
        transfer_number = self.telephony.transfer_number(business) if self.telephony is not None else None
        language = self._call_language(business, caller, transport, recorder, tools)
        # A moved call carries on over Realtime: the restore is Realtime's conversation items.
        engine = self.engine_for(business) if resumed is None else "realtime"
        recorder.set_engine("realtime")
        if resumed is not None:
            resumed.restore(recorder)
        live: FallbackLink | None = None
        if engine == "live":
            link = live = self._live_link(business, caller, transport, recorder, fallback=link, language=language)

        async def run_call_tool(name: str, arguments: str) -> dict[str, Any]:
            if name == SET_LANGUAGE_TOOL:
                return language.run_tool(arguments)[0]
            if name == TRANSFER_TOOL and not (transfer_number and transport.channel != "browser"):
                return {"transferred": False, "message": "No one can take the call on this line: offer to take "
                        "a message instead."}
            assert live is not None
            live.request_call_control(name)
            return {"ok": True, "note": "This happens right after your reply has been said."}

        async def ask_supervisor(conversation: str, context: str) -> SupervisorAnswer:
            try:
                client = self.supervisor_client()
            except LinkUnavailable:
                return SupervisorAnswer(text=FALLBACK, ms=0, ok=False)
            on_live = live is not None and live.engine == "live"
            supervisor = Supervisor(
                client,
                model=self.settings.supervisor_model,
                instructions=supervisor_instructions(business, caller) + (CALL_CONTROL_NOTE if on_live else "")
                + language.supervisor_note(with_tool=on_live),
                tools=tools,
                recorder=recorder,
                timeout_seconds=self.settings.supervisor_timeout_seconds,
                call_tools=[*call_control_tools(), set_language_tool()] if on_live else (),
                run_call_tool=run_call_tool if on_live else None,
            )
            return await supervisor.answer(conversation, context)

        return CallBridge(
            transport=transport,
            link=link,
            recorder=recorder,
            ask_supervisor=ask_supervisor,
            session_update=resumed.session_update if resumed is not None and resumed.session_update
            else language.configure(session_config(
                business,
                caller,
                model=self.settings.realtime_model,
                transcription_model=self.settings.transcription_model,
                audio_format=transport.audio_format,
                far_field=transport.channel == "browser",
            )),
            resume=resumed.point if resumed is not None else None,
            greeting=greet(business, caller) if greet is not None else greeting_for(business),
            # No cap at OpenAI's 60-minute session limit: the bridge rolls the call over to a fresh session.
            limits=limits or CallLimits(
                max_call_seconds=float(business.max_call_seconds or 600),
                realtime_session_seconds=float(self.settings.realtime_session_max_seconds),
            ),
            link_factory=self.new_link,
            service_stopping=lambda: self.draining or self._stopping,
            transfer_number=transfer_number,
            realtime_model=self.settings.realtime_model,
            transcription_model=self.settings.transcription_model,
            language=language,
        )

    def _call_language(self, business: Business, caller: CallerContext, transport: CallerTransport,
                       recorder: CallRecorder, tools: ToolContext) -> CallLanguage:
        """Issue 16: the call's language, starting in the business's primary one; the channel's own lines, the
        tools' wording of times and the call record follow its switches."""
        language = CallLanguage.for_business(business.languages, transcription_model=self.settings.transcription_model,
                                             remembered=caller.language)
        language.record_with(recorder.add)

        def follow(current: Language) -> None:
            transport.language = tools.language = recorder.language = current.code

        language.on_change(follow)
        return language

    # -- GPT-Live (issue 12) ------------------------------------------------------------------------------
    def engine_for(self, business: Business) -> str:
        """The owner's choice, else the operator's default."""
        return business.voice_engine or self.settings.voice_engine_default

    def _live_link(
        self,
        business: Business,
        caller: CallerContext,
        transport: CallerTransport,
        recorder: CallRecorder,
        *,
        fallback: RealtimeLink,
        language: CallLanguage,
    ) -> FallbackLink:
        """A Live link for this call, with the (prewarmed) Realtime link kept ready in case Live refuses."""
        model = self.settings.live_model
        live = LiveLink(self.settings, self.realtime_client(), live_session_config(
            model=model, instructions=live_instructions(business, caller) + "\n\n" + language.policy(with_tool=False),
            voice=business.voice or "marin",
            audio_format=transport.audio_format,
        )).start()
        live.on_usage = lambda active, standby: recorder.set_live_usage(model, active, standby)
        recorder.set_engine("live")

        def fell_back(reason: str) -> None:
            recorder.set_engine("realtime")
            recorder.add(EventKind.SYSTEM, "GPT-Live unavailable: answered on Realtime",
                         {"engine": "realtime", "requested_engine": "live", "reason": reason})

        link = FallbackLink(live, lambda: fallback, on_fallback=fell_back)
        link.prefetch_fallback()
        return link

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.settings.openai_api_key:
            # Each client and the realtime TLS context reads the CA store (~20 ms apiece): do it once, here and
            # off the loop, rather than inside the first calls' webhooks where it would stall live audio.
            await asyncio.to_thread(self._build_clients)
            await warm_openai_sdk()
        self._housekeeping.start()
        self.jobs.start()

    def _build_clients(self) -> None:
        self.realtime_client()
        self.supervisor_client()
        self._summary_client()
        connection_options(self.settings)  # builds the shared TLS context when OpenAI is reached over https

    async def _housekeeping_pass(self) -> None:
        """Calls orphaned by a process that died get ended (and summarised), and sessions nobody connected
        to get closed: at start-up, then every minute (two indexed look-ups that find nothing almost always)."""
        if await lifecycle.reap_stale_calls(self.db):
            self.jobs.poke()
        await lifecycle.close_unclaimed(self.db)
        await retention_pass(self.db, self.settings.recordings_dir)

    def drain(self) -> int:
        """Stop taking calls (health says draining) and let the live ones finish, for at most
        DRAIN_TIMEOUT_SECONDS; returns how many are live now. Idempotent."""
        self.draining = True
        if self._drain_task is None:
            self._drain_task = asyncio.get_running_loop().create_task(self._wait_drained(), name="drain")
            self._move_task = asyncio.get_running_loop().create_task(self._move_calls(), name="drain-moves")
        log.warning("draining: %d live call(s)", len(self.bridges))
        return len(self.bridges)

    @property
    def moving(self) -> bool:
        """Phone calls are still being handed to another instance (drain started, hand-over not finished)."""
        return self._move_task is not None and not self._move_task.done()

    async def _move_calls(self) -> None:
        """Issue 11: phone calls move to another instance rather than wait for their end (nobody knows when
        that is); a goodbye or transfer under way finishes here. Browser test calls finish here."""
        if not any(b.transport.channel == "twilio" for b in self.bridges):
            return
        if not await somewhere_to_go(self.settings):
            log.warning("drain: no other instance answers behind PUBLIC_BASE_URL: live calls finish here")
            return
        url = moved_stream_url(self.settings)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.drain_timeout_seconds
        seen: set[CallBridge] = set()
        moves: list[asyncio.Task[bool]] = []
        # A stream whose webhook came just before the drain may connect after it: it moves too.
        while True:
            for bridge in list(self.bridges):
                if bridge not in seen and bridge.transport.channel == "twilio" and bridge.ending is None:
                    seen.add(bridge)
                    moves.append(loop.create_task(move_call(bridge, db=self.db, issuer=self.issuer, stream_url=url)))
            waiting = any(b not in seen and b.transport.channel == "twilio" for b in self.bridges)
            if loop.time() >= deadline or (all(t.done() for t in moves) and not waiting):
                break
            await asyncio.sleep(0.5)
        results = await asyncio.gather(*moves, return_exceptions=True)
        for exc in (r for r in results if isinstance(r, BaseException)):
            log.error("drain: a call move failed: %r", exc)
        log.warning("drain: %d of %d phone call(s) moved to another instance",
                    sum(1 for r in results if r is True), len(results))

    async def _wait_drained(self) -> int:
        deadline = asyncio.get_running_loop().time() + self.settings.drain_timeout_seconds
        # A few looks a second at a set every call's handler changes, for the drain's minute at most.
        while self.bridges and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        browser = [b for b in self.bridges if b.transport.channel == "browser"]
        if browser:
            # Test calls can't move: they end now, their socket closed with the reason, rather than be cut.
            await asyncio.gather(*(b.stop("service_restart") for b in browser), return_exceptions=True)
        if self.bridges:
            log.warning("drain timed out with %d live call(s): they end when the process stops", len(self.bridges))
        else:
            log.warning("drained: no live calls")
        return len(self.bridges)

    async def stop(self) -> None:
        self._stopping = True
        bridges = list(self.bridges)
        if bridges:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                    await asyncio.gather(*(b.stop("service_restart") for b in bridges), return_exceptions=True)
        for session_id in list(self._prewarmed):
            await self.drop_prewarmed(session_id)
        await self._housekeeping.stop()
        await self.jobs.stop()
        for client in (self._realtime_client, self._supervisor_client, self._summaries_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()


def get_runtime(app: Litestar) -> CallRuntime:
    return app.state.runtime  # type: ignore[no-any-return]


async def start_runtime(app: Litestar) -> None:
    runtime = CallRuntime(app.state.settings, app.state.db)
    app.state.runtime = runtime
    app.state.jobs = runtime.jobs
    await runtime.start()


async def stop_runtime(app: Litestar) -> None:
    runtime = app.state.get("runtime")
    if runtime is not None:
        await runtime.stop()
