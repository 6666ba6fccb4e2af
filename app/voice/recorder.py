"""The record of one call: turns, tool events, latencies and usage, kept in memory and written per turn.

Nothing here runs per audio frame. `flush()` is called once a turn ends (a caller transcript, an agent
response, a supervisor answer); `finalise()` writes the end of the call exactly once, whoever calls it
first (goodbye, caller gone, socket drop, error, limit, shutdown) and even across processes: the Call row is
only ended if it was not ended already, and the summary job is enqueued in that same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import update

from app.billing.metering import on_call_finalised
from app.billing.pricing import PRICES_AS_OF, TokenUsage, cost_usd
from app.billing.usage import billable_on_finalise
from app.db.engine import Database
from app.db.models import Call, CallEvent, CallStatus, EventKind, Session, SessionStatus
from app.jobs import enqueue

log = logging.getLogger(__name__)

SUMMARY_JOB = "summary"
#: A live call writes at least this often (a flush, even with nothing new), so a call whose row goes
#: quiet for several of these belongs to a process that died.
HEARTBEAT_SECONDS = 30.0
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
        self._sequence = 0
        self._sources: dict[str, _Source] = {}
        self.latencies: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._ending: Ending | None = None
        self._on_finalised = on_finalised
        self.caller_turns = 0

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
                data=data or {},
            )
        )
        if kind.value in _ROLE_LABEL and text.strip():
            self._transcript.append(f"{_ROLE_LABEL[kind.value]}: {text.strip()}")
            if kind is EventKind.CALLER:
                self.caller_turns += 1

    def add_usage(self, source: str, model: str, tokens: TokenUsage) -> None:
        entry = self._sources.setdefault(source, _Source(model=model))
        entry.tokens.add(tokens)

    def add_latency(self, entry: dict[str, Any]) -> None:
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
            cost = cost_usd(source.model, source.tokens, self._price_overrides)
            usage[name] = {"model": source.model, **source.tokens.as_dict(), "cost_usd": cost}
            total_in += source.tokens.input_tokens
            total_out += source.tokens.output_tokens
            if cost is None:
                unknown = True
            else:
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
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            # A Core UPDATE doesn't touch the audit column; housekeeping reads it as the call's sign of life.
            "updated_at": now,
            "transcript": self.transcript,
            "usage": usage,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cost_usd": cost,
            "price_unknown": price_unknown,
            "latencies": list(self.latencies),
        }
        if final is not None:
            values.update(
                status=final.status,
                end_reason=final.reason,
                ended_at=now,
                duration_seconds=round((now - self.started_at).total_seconds(), 3),
                billable_seconds=billable_on_finalise(round((now - self.started_at).total_seconds(), 3),
                                                      caller_spoke=self.caller_turns > 0),
            )
        try:
            async with self._db.session() as s, s.begin():
                result = await s.execute(
                    update(Call).where(Call.id == self.call_id, Call.ended_at.is_(None)).values(**values)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    return False  # ended elsewhere (another process or a status callback): keep theirs
                s.add_all(events)
                if final is not None:
                    failed = final.status == CallStatus.FAILED.value
                    await s.execute(
                        update(Session)
                        .where(Session.id == self.session_id)
                        .values(
                            status=SessionStatus.FAILED.value if failed else SessionStatus.COMPLETED.value,
                            ended_at=now,
                            failure_reason=final.failure,
                        )
                    )
                    await enqueue(s, SUMMARY_JOB, {"call_id": str(self.call_id)}, key=f"summary:{self.call_id}")
                    await on_call_finalised(s, self.call_id)
            return True
        except Exception:
            # Keep the events for the next attempt rather than lose a turn to a passing database error.
            self._pending = events + self._pending
            log.exception("could not write call %s", self.call_id)
            return False

    async def finalise(self, status: CallStatus, reason: str, failure: str | None = None) -> bool:
        """End the call record; only the first call has any effect. True when this call wrote it."""
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
        if written and self._on_finalised is not None:
            self._on_finalised()
        return written
