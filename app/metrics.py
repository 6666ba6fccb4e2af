"""The service's Prometheus instruments, and the event-loop lag watcher (exposed by `app.web.metrics`).

Nothing here touches an audio frame. Counters move where the call record already does its per-turn work
(`CallRecorder.add_latency`, `finalise`), the live-call gauge where a bridge starts and ends, the queue
depth once per job-worker pass, and the event-loop lag is sampled by a task of its own four times a second —
the lag is what every frame of every call on this worker waits for, so it stands in for per-frame relay
latency without a clock read per frame (bench/bench_load.py measures the frames themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

live_calls = Gauge("receptionist_live_calls", "Calls being bridged now", multiprocess_mode="livesum")
calls_started = Counter("receptionist_calls_started", "Calls whose bridge started", ["channel"])
calls_ended = Counter("receptionist_calls_ended", "Calls finalised, by status and end reason", ["status", "reason"])
loop_lag_ms = Histogram("receptionist_event_loop_lag_ms", "How late the event loop wakes (every frame waits this)",
                        buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 250, 1000))
greeting_ms = Histogram("receptionist_greeting_ms", "Call start to the greeting's first audio", buckets=_MS_BUCKETS)
response_ms = Histogram("receptionist_response_ms", "Caller stops speaking to the agent's first audio",
                        buckets=_MS_BUCKETS)
supervisor_ms = Histogram("receptionist_supervisor_ms", "Supervisor (Responses API) answer time", buckets=_MS_BUCKETS)
openai_errors = Counter("receptionist_openai_errors", "Errors from OpenAI during calls, by code", ["code"])
realtime_reconnects = Counter("receptionist_realtime_reconnects", "Realtime sessions reopened mid-call")
#: issue 10: where a call's set-up time goes (webhook; on the stream: claim = the call starts, plan = its business
#: and caller (read at webhook time when the stream lands in that process), prepare = prompt, tools, bridge)
call_setup_ms = Histogram("receptionist_call_setup_ms", "Call set-up stages before the greeting, by stage",
                          ["stage"], buckets=_MS_BUCKETS)
jobs_waiting = Gauge("receptionist_jobs_waiting", "Background jobs pending or running", multiprocess_mode="max")
jobs_failed = Counter("receptionist_jobs_failed", "Background jobs that gave up, by kind", ["kind"])


def observe_latency(entry: dict[str, Any]) -> None:
    """One entry of a call's latency record (`{"turn": n, "response_ms": …}` etc.)."""
    if "response_ms" in entry:
        (greeting_ms if entry.get("turn") == 0 else response_ms).observe(entry["response_ms"])
    if "supervisor_ms" in entry:
        supervisor_ms.observe(entry["supervisor_ms"])


async def watch_loop_lag(period: float = 0.25) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        loop_lag_ms.observe(max(0.0, (loop.time() - due) * 1000))


class LoopLagWatcher:
    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(watch_loop_lag(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
