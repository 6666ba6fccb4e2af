"""The record of one call: turns, tool events, latencies and usage, kept in memory and written per turn.

Nothing here runs per audio frame. `flush()` is called once a turn ends (a caller transcript, an agent
response, a supervisor answer); `finalise()` writes the end of the call exactly once, whoever calls it
first (goodbye, caller gone, socket drop, error, limit, shutdown) and even across processes: the Call row is
only ended if it was not ended already, and the summary job is enqueued in that same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from app import metrics
from app.billing.pricing import LIVE_PRICES_AS_OF, PRICES_AS_OF, TokenUsage, cost_usd, live_cost_usd
from app.db.engine import Database
from app.db.models import CallEvent, CallStatus, EventKind
from app.voice import lifecycle
from app.voice.lifecycle import HEARTBEAT_SECONDS, SUMMARY_JOB

__all__ = ["HEARTBEAT_SECONDS", "SUMMARY_JOB", "CallRecorder", "Ending"]

#: how long the end of a call waits for a move under way to be confirmed or given up (a REST round trip)
MOVE_DECISION_SECONDS = 15.0

log = logging.getLogger(__name__)

_ROLE_LABEL = {EventKind.CALLER.value: "Caller", EventKind.AGENT.value: "Agent"}


@dataclass(slots=True)
class _Source:
    model: str
    tokens: TokenUsage = field(default_factory=TokenUsage)


@dataclass(frozen=True, slots=True)
class Ending:
    status: str
    reason: str
    failure: str | None = None


class CallRecorder:
    def __init__(
        self,
        db: Database,
        *,
        call_id: UUID,
        session_id: UUID,
        business_id: UUID,
        started_at: datetime,
        price_overrides: Any = None,
        clock: Callable[[], float] = time.monotonic,
        on_finalised: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self.call_id, self.session_id, self.business_id = call_id, session_id, business_id
        self.started_at = started_at
        self._t0 = clock()
        self._clock = clock
        self._price_overrides = price_overrides
        self._pending: list[CallEvent] = []
        self._transcript: list[str] = []
        self.turns: list[tuple[str, str]] = []  # (EventKind value, text): what a new realtime session replays
        self._sequence = 0
        self._sources: dict[str, _Source] = {}
        self.latencies: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._ending: Ending | None = None
        self._on_finalised = on_finalised
        self.caller_turns = 0
        # Issue 12: which engine answers, and a Live session's cumulative time (model, active s, standby s).
        self.engine: str | None = None
        # Issue 16: the language the call is held in (BCP-47), kept current by app.voice.language.
        self.language: str | None = None
        self._live: tuple[str, float, float] | None = None
        # Issue 11: a move to another instance under way (its CallMove id) and whether it was decided.
        self._move_id: UUID | None = None
        self._move_decided: asyncio.Event | None = None

    # -- in memory ----------------------------------------------------------------------------------------
    def offset_ms(self) -> int:
        return int((self._clock() - self._t0) * 1000)

    def add(self, kind: EventKind, text: str = "", data: dict[str, Any] | None = None, *,
            offset_ms: int | None = None) -> None:
        self._sequence += 1
        self._pending.append(
            CallEvent(
                call_id=self.call_id,
                business_id=self.business_id,
                sequence=self._sequence,
                offset_ms=self.offset_ms() if offset_ms is None else max(0, offset_ms),
                kind=kind.value,
                text=text,
                data=dict(data) if data else {},  # a copy: written later, from the writer thread
            )
        )
        if kind.value in _ROLE_LABEL and text.strip():
            self._transcript.append(f"{_ROLE_LABEL[kind.value]}: {text.strip()}")
            self.turns.append((kind.value, text.strip()))
            if kind is EventKind.CALLER:
                self.caller_turns += 1

    def add_usage(self, source: str, model: str, tokens: TokenUsage) -> None:
        entry = self._sources.setdefault(source, _Source(model=model))
        entry.tokens.add(tokens)

    def set_engine(self, engine: str) -> None:
        self.engine = engine

    def set_live_usage(self, model: str, active_seconds: float, standby_seconds: float) -> None:
        """A Live session's usage is cumulative (`session.usage.updated`): each report replaces the last."""
        self._live = (model, float(active_seconds), float(standby_seconds))

    def add_latency(self, entry: dict[str, Any]) -> None:
        metrics.observe_latency(entry)
        for existing in self.latencies:
            if existing.get("turn") == entry.get("turn"):
                existing.update(entry)
                return
        self.latencies.append(dict(entry))

    @property
    def transcript(self) -> str:
        return "\n".join(self._transcript)

    @property
    def ending(self) -> Ending | None:
        return self._ending

    def usage_report(self) -> tuple[dict[str, Any], int, int, float, bool]:
        """Usage per source, tokens in/out, the priced cost, and whether some usage had no known price."""
        usage: dict[str, Any] = {"prices_as_of": PRICES_AS_OF}
        total_in = total_out = 0
        total_cost = 0.0
        unknown = False
        for name, source in self._sources.items():
            if not any(source.tokens.as_dict().values()):
                continue  # nothing counted (e.g. GPT-Live's transcripts are part of its session time)
            cost = cost_usd(source.model, source.tokens, self._price_overrides)
            usage[name] = {"model": source.model, **source.tokens.as_dict(), "cost_usd": cost}
            total_in += source.tokens.input_tokens
            total_out += source.tokens.output_tokens
            if cost is None:
                unknown = True
            else:
                total_cost += cost
        if self._live is not None:
            model, active, standby = self._live
            cost = live_cost_usd(model, active, standby, self._price_overrides)
            usage["live"] = {"model": model, "active_seconds": active, "standby_seconds": standby,
                             "cost_usd": cost, "prices_as_of": LIVE_PRICES_AS_OF}
            total_cost += cost
        return usage, total_in, total_out, round(total_cost, 6), unknown

    # -- database -----------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write the events gathered since the last flush, plus the running transcript and usage."""
        async with self._lock:
            if self._ending is not None:
                return
            await self._write_pending(final=None)

    async def _write_pending(self, final: Ending | None) -> bool:
        events, self._pending = self._pending, []
        usage, tokens_in, tokens_out, cost, price_unknown = self.usage_report()
        values: dict[str, Any] = {
            "transcript": self.transcript,
            "usage": usage,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost_usd": cost,
            "price_unknown": price_unknown,
            # Copies: the row is written in the writer's thread (app/db/writer.py) while turns go on updating these.
            "latencies": [dict(entry) for entry in self.latencies],
        }
        if self.engine is not None:
            values["engine"] = self.engine
        if self.language is not None:
            values["language"] = self.language
        try:
            if final is None:
                return await lifecycle.flush_call(self._db, self.call_id, values, events)
            return await lifecycle.finalise_call(self._db, self.call_id, self.session_id, values, events,
                                                 status=final.status, reason=final.reason, failure=final.failure,
                                                 started_at=self.started_at, caller_spoke=self.caller_turns > 0)
        except Exception:
            # Keep the events for the next attempt rather than lose a turn to a passing database error.
            self._pending = events + self._pending
            log.exception("could not write call %s", self.call_id)
            return False

    async def finalise(self, status: CallStatus, reason: str, failure: str | None = None) -> bool:
        """End the call record; only the first call has any effect. True when this call wrote it. A call that
        moved to another instance is not ended here: its record is written once more and left to that one."""
        if self._move_decided is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MOVE_DECISION_SECONDS):
                    await self._move_decided.wait()
            if self._move_id is not None:
                return await self._release_moved(self._move_id)
        async with self._lock:
            if self._ending is not None:
                return False
            ending = Ending(status=status.value, reason=reason, failure=failure)
            self._ending = ending
            if failure:
                self.add(EventKind.ERROR, failure, {"reason": reason})
            self.add(EventKind.SYSTEM, f"call ended: {reason}", {"status": status.value, "reason": reason})
            written = False
            for attempt in range(3):
                written = await self._write_pending(final=ending)
                if written or not self._pending:
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
        if written:
            metrics.calls_ended.labels(status.value, reason).inc()
            if self._on_finalised is not None:
                self._on_finalised()
        return written

    # -- issue 11: moving a call between instances ------------------------------------------------------------
    def begin_move(self, move_id: UUID) -> None:
        """The call is being redirected to another instance: until `settle_move`, its end waits to learn
        whether it moved (then this side only writes its last part) or stays (then it ends here as usual)."""
        self._move_id = move_id
        self._move_decided = asyncio.Event()

    def settle_move(self, moved: bool) -> None:
        if not moved:
            self._move_id = None
        if self._move_decided is not None:
            self._move_decided.set()
        if not moved:
            self._move_decided = None

    async def _release_moved(self, move_id: UUID) -> bool:
        async with self._lock:
            if self._ending is not None:
                return False
            self._ending = Ending(status="moved", reason="moved")
            self.add(EventKind.SYSTEM, "call moved to another instance", {"move": "released"})
            events, self._pending = self._pending, []
            usage, tokens_in, tokens_out, cost, price_unknown = self.usage_report()
            values: dict[str, Any] = {"transcript": self.transcript, "usage": usage, "input_tokens": tokens_in,
                                      "output_tokens": tokens_out, "cost_usd": cost, "price_unknown": price_unknown,
                                      "latencies": list(self.latencies)}
            if self.engine is not None:
                values["engine"] = self.engine
            for attempt in range(3):
                try:
                    return await lifecycle.release_moved(self._db, self.call_id, move_id, values, events)
                except Exception:
                    log.exception("could not write the moved call %s", self.call_id)
                    await asyncio.sleep(0.2 * (attempt + 1))
            return False

    def resume(self, *, sequence: int, turns: Iterable[tuple[str, str]], usage: Mapping[str, Any],
               latencies: Iterable[Mapping[str, Any]], engine: str | None) -> None:
        """Carry on the record of a call that moved here: numbering, transcript, usage (both instances'
        sessions are billed on one record) and the call's clock all continue from what the old side wrote."""
        self._sequence = max(self._sequence, sequence)
        for kind, text in turns:
            if kind in _ROLE_LABEL and text.strip():
                self._transcript.append(f"{_ROLE_LABEL[kind]}: {text.strip()}")
                self.turns.append((kind, text.strip()))
                if kind == EventKind.CALLER.value:
                    self.caller_turns += 1
        for name, entry in usage.items():
            if name == "live" and isinstance(entry, Mapping):
                self._live = (str(entry.get("model")), float(entry.get("active_seconds") or 0),
                              float(entry.get("standby_seconds") or 0))
            elif isinstance(entry, Mapping) and entry.get("model"):
                self._sources[name] = _Source(model=str(entry["model"]), tokens=TokenUsage.from_dict(entry))
        self.latencies = [dict(entry) for entry in latencies]
        self.engine = engine or self.engine
        self._t0 = self._clock() - max(0.0, (datetime.now(UTC) - self.started_at).total_seconds())
