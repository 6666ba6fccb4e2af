"""The realtime side of a call: one OpenAI Realtime (GA) WebSocket through the openai SDK.

The connect starts as soon as the link is created (a session can prewarm it before the caller's socket
arrives) and is awaited when the call begins. Events are read as plain dicts (msgspec): the bridge needs a handful of
fields, and skipping model construction keeps the per-delta cost of a long call low.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, cast

import msgspec
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.websocket_connection_options import WebSocketConnectionOptions

from app.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
# msgspec rather than the stdlib's json: a call decodes ~50 server events a second (issue 10 measured json at
# ~10% of the service's CPU); events stay plain dicts, base64 audio stays the str it arrived as.
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class LinkUnavailable(Exception):
    """OpenAI can't be used for this call; `reason` is safe to show the owner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Link(Protocol):
    """What the CallBridge needs from the realtime side (tests substitute a scripted one)."""

    async def wait_connected(self) -> None: ...
    async def send(self, event: dict[str, Any]) -> None: ...
    async def append_audio(self, chunk: bytes | str) -> None: ...
    def events(self) -> AsyncIterator[dict[str, Any]]: ...
    async def close(self) -> None: ...


def openai_client(settings: Settings, *, timeout: float = 30.0, max_retries: int = 1) -> AsyncOpenAI:
    if not settings.openai_api_key:
        raise LinkUnavailable("OpenAI is not configured on this service (OPENAI_API_KEY is not set)")
    return AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=timeout,
        max_retries=max_retries,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context for every realtime connect. Given none, asyncio builds a default context for each
    TLS connection on the event loop, reading the whole CA store (20-26 ms on the project machine): every
    call's connect would stall the audio of every live call. Built once, ideally off the loop at start-up."""
    return ssl.create_default_context()


def connection_options(settings: Settings) -> WebSocketConnectionOptions:
    if not settings.openai_base_url.startswith("https:"):
        return {}  # ws:// takes no TLS context (a local double, a plain-HTTP gateway)
    # `ssl` goes straight through to websockets' connect; the SDK's TypedDict just doesn't list it.
    return cast(WebSocketConnectionOptions, {"ssl": tls_context()})


def _underlying_send(conn: AsyncRealtimeConnection) -> Callable[[str], Awaitable[None]] | None:
    """The websockets connection's own `send` under the SDK's connection, for the 50 appends a second.

    The SDK's `send_raw` keeps a send queue and a receipt for its silent-reconnect feature (which this service
    never turns on: PROTOCOLS.md), asks anyio for the current task and only then calls this same `send`; that
    bookkeeping was ~7.5 % of the worker at 100 calls. With reconnects off its queue is always empty, so the
    frames and their order are the same. Everything else still goes through the SDK. None (use the SDK) if this
    SDK version keeps its socket elsewhere."""
    socket = getattr(conn, "_connection", None)
    send = getattr(socket, "send", None)
    if send is None or getattr(conn, "_on_reconnecting", None) is not None:
        return None
    return send  # type: ignore[no-any-return]


def _describe_failure(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return "OpenAI refused the API key (401)"
    if status is not None:
        return f"OpenAI refused the realtime connection (HTTP {status})"
    if isinstance(exc, TimeoutError):
        return "OpenAI did not answer in time"
    return f"OpenAI could not be reached ({type(exc).__name__})"


class RealtimeLink:
    def __init__(self, settings: Settings, client: AsyncOpenAI | None = None) -> None:
        self._settings = settings
        self._conn: AsyncRealtimeConnection | None = None
        self._socket_send: Callable[[str], Awaitable[None]] | None = None
        self._closed = False
        self._connect_task: asyncio.Task[AsyncRealtimeConnection] | None = None
        self._failure: str | None = None
        self._client: AsyncOpenAI | None = client
        if client is None:
            try:
                self._client = openai_client(settings)
            except LinkUnavailable as exc:
                self._failure = exc.reason

    def start(self) -> RealtimeLink:
        """Begin connecting now (prewarm); `wait_connected` collects the result."""
        if self._client is not None and self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect(self._client), name="realtime-connect")
        return self

    async def _connect(self, client: AsyncOpenAI) -> AsyncRealtimeConnection:
        # No on_reconnecting: a silent reconnect would lose the conversation mid-call (PROTOCOLS.md).
        manager = client.realtime.connect(model=self._settings.realtime_model,
                                          websocket_connection_options=connection_options(self._settings))
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            return await manager.enter()

    async def wait_connected(self) -> None:
        if self._failure is not None:
            raise LinkUnavailable(self._failure)
        self.start()
        assert self._connect_task is not None
        try:
            self._conn = await self._connect_task
            self._socket_send = _underlying_send(self._conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failure = _describe_failure(exc)
            log.warning("realtime connect failed: %s (%r)", self._failure, exc)
            raise LinkUnavailable(self._failure) from None

    @property
    def connection(self) -> AsyncRealtimeConnection:
        if self._conn is None:
            raise LinkUnavailable(self._failure or "the realtime connection is not open")
        return self._conn

    async def send(self, event: dict[str, Any]) -> None:
        await self.connection.send_raw(_encoder.encode(event).decode())

    async def append_audio(self, chunk: bytes | str) -> None:
        # One base64 string (a str is the caller's wire payload, passed on as it came) in one small JSON envelope
        # per frame: the least the protocol allows.
        payload = chunk if isinstance(chunk, str) else base64.b64encode(chunk).decode("ascii")
        text = '{"type":"input_audio_buffer.append","audio":"' + payload + '"}'
        if self._socket_send is not None:
            await self._socket_send(text)
        else:
            await self.connection.send_raw(text)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        from websockets.exceptions import ConnectionClosed

        conn = self.connection
        while True:
            try:
                raw = await conn.recv_bytes()
            except ConnectionClosed:
                return
            try:
                event = _decoder.decode(raw)
            except (msgspec.DecodeError, RecursionError):
                log.warning("realtime sent a frame that is not JSON; ignored")
                continue
            if isinstance(event, dict):
                yield event

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
