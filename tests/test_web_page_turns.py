"""Owner pages take turns (app/web/page_turns.py): one page's handler at a time, the turn freed when its
response starts, callers' and services' paths never waiting, and no page waiting past the limit."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.types import Message, Receive, Scope, Send

from app.web.page_turns import PageTurns
from tests.support.waiting import wait_until


def _scope(path: str) -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": []}  # type: ignore[return-value]


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}  # type: ignore[return-value]


class Page:
    """An ASGI app that records when its handler runs and answers when `finish` is set."""

    def __init__(self, log: list[str], name: str, *, streams: bool = False) -> None:
        self.log, self.name, self.streams = log, name, streams
        self.finish = asyncio.Event()
        self.body_done = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.log.append(f"{self.name} runs")
        if not self.streams:
            await self.finish.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[typeddict-item]
        if self.streams:
            await self.finish.wait()  # a stream stays open after it started (events, a recording)
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # type: ignore[typeddict-item]
        self.log.append(f"{self.name} done")


async def _send(_message: Message) -> None:
    return None


async def _request(turns: PageTurns, path: str, app: Any) -> None:
    await turns.handle(_scope(path), _receive, _send, app)


async def test_a_second_page_waits_until_the_first_one_has_answered() -> None:
    turns, log = PageTurns(turns=1, wait_at_most=30), []
    first, second = Page(log, "first"), Page(log, "second")
    tasks = [asyncio.create_task(_request(turns, "/calls", first))]
    await wait_until(lambda: log == ["first runs"], interval=0.001)
    tasks.append(asyncio.create_task(_request(turns, "/billing", second)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert log == ["first runs"]  # waiting for the turn
    first.finish.set()
    await wait_until(lambda: "second runs" in log, interval=0.001)
    second.finish.set()
    await asyncio.gather(*tasks)
    assert log == ["first runs", "first done", "second runs", "second done"]


async def test_a_started_stream_frees_the_turn_and_callers_paths_never_wait() -> None:
    turns, log = PageTurns(turns=1, wait_at_most=30), []
    stream, page, webhook = Page(log, "events", streams=True), Page(log, "page"), Page(log, "webhook")
    held = Page(log, "held")
    tasks = [asyncio.create_task(_request(turns, "/sessions/live/events", stream))]
    await wait_until(lambda: "events runs" in log, interval=0.001)
    tasks.append(asyncio.create_task(_request(turns, "/calls", page)))
    await wait_until(lambda: "page runs" in log, interval=0.001)  # the open stream holds no turn
    tasks.append(asyncio.create_task(_request(turns, "/overview", held)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert "held runs" not in log  # "/calls" has the turn until it answers
    tasks.append(asyncio.create_task(_request(turns, "/twilio/voice", webhook)))
    await wait_until(lambda: "webhook runs" in log, interval=0.001)  # Twilio's webhook goes ahead of the queue
    for app in (webhook, page, held, stream):
        app.finish.set()
    await asyncio.gather(*tasks)
    assert log.index("held runs") > log.index("page done")


async def test_a_page_waits_no_longer_than_the_limit_behind_one_that_is_stuck() -> None:
    turns, log = PageTurns(turns=1, wait_at_most=0.05), []
    stuck, patient = Page(log, "stuck"), Page(log, "patient")
    stuck_task = asyncio.create_task(_request(turns, "/billing", stuck))  # say, waiting on Polar
    await wait_until(lambda: "stuck runs" in log, interval=0.001)
    patient.finish.set()
    await _request(turns, "/calls", patient)
    assert log == ["stuck runs", "patient runs", "patient done"]
    stuck.finish.set()
    await stuck_task
    # Both turns were given back: the next page runs at once.
    after = Page(log, "after")
    after.finish.set()
    async with asyncio.timeout(0.04):
        await _request(turns, "/calls", after)
