"""The two small pieces of a call's state the CallBridge used to keep loose: the model's response (is one being
generated, which item is playing, how much audio each item produced) and the per-turn latency figures.

"Is a response active" has one truth here, the idle event: `active` reads it, `wait_idle` waits on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class ResponseState:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._idle = asyncio.Event()  # set while no response is being generated
        self._idle.set()
        self._finished = asyncio.Event()  # set by each `response.done` (cleared by whoever waits for the next)
        #: the interrupted response whose remaining audio must not play
        self.muted: str | None = None
        self.last_id: str | None = None
        #: a create was refused because one was active: ask again after its `response.done`
        self.create_after_done = False
        #: the agent item whose audio is playing (what barge-in truncates)
        self.playing_item: str | None = None
        self.produced_bytes: dict[str, int] = {}
        #: when the agent audio sent so far ends, on the bridge's clock
        self.audio_until = clock()
        #: the spoken answer's transcript so far
        self.partial = ""

    @property
    def active(self) -> bool:
        return not self._idle.is_set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def expect_finish(self) -> None:
        """Before a create whose `response.done` is awaited with `wait_finished`."""
        self._finished.clear()

    async def wait_finished(self) -> None:
        await self._finished.wait()

    def created(self, response_id: str | None) -> None:
        self._idle.clear()
        self.partial = ""
        self.last_id = response_id
        if response_id != self.muted:
            self.muted = None

    def done(self) -> None:
        self.last_id = None
        self._finished.set()
        self._idle.set()

    def is_muted(self, response_id: Any) -> bool:
        return self.muted is not None and response_id == self.muted

    def produced(self, item_id: str, nbytes: int) -> None:
        self.produced_bytes[item_id] = self.produced_bytes.get(item_id, 0) + nbytes

    def produced_ms(self, item_id: str, bytes_per_ms: int) -> int:
        return self.produced_bytes.get(item_id, 0) // bytes_per_ms

    def forget(self) -> None:
        """The realtime session is gone: whatever it was generating is over."""
        self.done()
        self.muted = None
        self.create_after_done = False
        self.playing_item = None
        self.partial = ""
        self.audio_until = self._clock()


class TurnMetrics:
    """Per-turn latency: caller stops speaking -> first agent audio (`response_ms`), supervisor asked ->
    first audio of its answer (`answer_ms`); turn 0 is the greeting, timed from the call's start."""

    def __init__(self, record: Callable[[dict[str, Any]], None]) -> None:
        self._record = record
        self.turn = 0
        self._stopped_at: float | None = None
        self._awaiting_answer: tuple[int, float] | None = None

    def call_started(self, now: float) -> None:
        self._stopped_at = now

    def caller_stopped(self, now: float) -> None:
        self.turn += 1
        self._stopped_at = now

    def answer_asked(self, turn: int, now: float) -> None:
        self._awaiting_answer = (turn, now)

    def agent_audio(self, now: float) -> None:
        if self._stopped_at is not None:
            self._record({"turn": self.turn, "response_ms": int((now - self._stopped_at) * 1000)})
            self._stopped_at = None
        if self._awaiting_answer is not None:
            turn, asked_at = self._awaiting_answer
            self._record({"turn": turn, "answer_ms": int((now - asked_at) * 1000)})
            self._awaiting_answer = None
