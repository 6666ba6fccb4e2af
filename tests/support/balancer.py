"""A tiny loopback load balancer in front of several instances of the service, for tests of planned restarts.

Like a real one it checks each backend's `/health` and sends every new request, and every new WebSocket,
to the first backend that answers 200 and is not "draining"; HTTP is forwarded as is, WebSockets are
relayed frame for frame both ways (close codes included). It is the services' PUBLIC_BASE_URL, so Twilio's
webhooks and streams, and a draining instance's own look at "is anyone else there?", all go through it.
Runs in its own thread with its own event loop (sync and async tests can both use it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.server import free_port
from tests.support.threaded_site import OnThreadedSite, ThreadedSite

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length", "content-encoding"}


class LoadBalancer(OnThreadedSite):
    def __init__(self) -> None:
        self.backends: list[str] = []  # http://127.0.0.1:PORT of each instance
        #: (path, backend) of every WebSocket relayed, in order
        self.sockets: list[tuple[str, str]] = []
        self._client: aiohttp.ClientSession | None = None
        self._site = ThreadedSite("load-balancer", self._app, port=free_port())

    @property
    def url(self) -> str:
        return self._site.url

    # -- lifecycle ----------------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application(client_max_size=2**24)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.cleanup_ctx.append(self._client_session)
        return app

    async def _client_session(self, _app: web.Application) -> AsyncIterator[None]:
        self._client = aiohttp.ClientSession(auto_decompress=True)
        yield
        await self._client.close()

    # -- routing ------------------------------------------------------------------------------------------
    async def _pick(self) -> str | None:
        assert self._client is not None
        for backend in list(self.backends):
            try:
                async with self._client.get(backend + "/health", timeout=aiohttp.ClientTimeout(total=3)) as response:
                    body: Any = await response.json(content_type=None)
                    if response.status == 200 and isinstance(body, dict) and body.get("status") != "draining":
                        return backend
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                continue
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        backend = await self._pick()
        if backend is None:
            return web.json_response({"status": "draining", "detail": "no backend available"}, status=503)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._relay_socket(request, backend)
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._client.request(request.method, backend + request.path_qs, headers=headers,
                                        data=await request.read(), allow_redirects=False,
                                        timeout=aiohttp.ClientTimeout(total=30)) as upstream:
            body = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=body, headers=out)

    async def _relay_socket(self, request: web.Request, backend: str) -> web.StreamResponse:
        assert self._client is not None
        self.sockets.append((request.path, backend))
        headers = {k: v for k, v in request.headers.items() if k.lower() in {"user-agent", "cookie", "origin"}}
        upstream = await self._client.ws_connect("ws" + backend.removeprefix("http") + request.path_qs,
                                                 headers=headers, max_msg_size=2**22)
        downstream = web.WebSocketResponse(max_msg_size=2**22)
        await downstream.prepare(request)

        async def pump(source: Any, target: Any) -> None:
            reason = ""
            async for message in source:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await target.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await target.send_bytes(message.data)
                else:
                    reason = str(message.extra or "") if message.type == aiohttp.WSMsgType.CLOSE else ""
                    break
            with contextlib.suppress(Exception):  # the close frame goes on, code and reason as they came
                await target.close(code=source.close_code or 1000, message=reason.encode()[:120])

        tasks = [asyncio.ensure_future(pump(downstream, upstream)), asyncio.ensure_future(pump(upstream, downstream))]
        await asyncio.wait(tasks, return_when=asyncio.ALL_COMPLETED)
        return downstream
