"""A realtime model in echo mode, for load runs: the least a Realtime GA peer can do, so what is measured is
the forwarder between it and the caller.

Speaks the GA WebSocket protocol's happy path on `/v1/realtime`: `session.update` -> `session.updated`;
`response.create` -> a response whose first audio is a short stamped greeting, after which every
`input_audio_buffer.append` is sent straight back as a `response.output_audio.delta` of that response (the
same base64 text); `response.cancel` -> `response.done` (cancelled) with usage, as OpenAI bills it.
Each frame's first 4 bytes are a stamp; the server keeps when it received and sent each stamp
(time.monotonic(), the same clock as the load generator's on Linux) and answers `GET /stats` with them and
the number of sessions still open.

    python bench/echo_model.py PORT
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import sys
import time
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

GREETING_FRAMES = 10  # 200 ms of audio, stamps 0xFFFF0000 + n
GREETING_STAMP = 0xFFFF0000

received: dict[int, float] = {}
sent: dict[int, float] = {}
open_sessions = 0
sessions_total = 0
_ids = itertools.count(1)  # event ids
_sessions = itertools.count(1)


def stamp_of(b64: str) -> int:
    return int.from_bytes(base64.b64decode(b64[:8])[:4], "big")


def frame(stamp: int) -> str:
    return base64.b64encode(stamp.to_bytes(4, "big") + b"\xff" * 156).decode()


def usage() -> dict[str, Any]:
    return {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": 0, "audio_tokens": 0}}


async def session(ws: ServerConnection) -> None:
    global open_sessions, sessions_total
    open_sessions += 1
    sessions_total += 1
    n = next(_sessions)
    response: dict[str, str] | None = None

    async def emit(event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"event_{n}_{next(_ids)}")
        await ws.send(json.dumps(event))

    try:
        await emit({"type": "session.created", "session": {"id": f"sess_{n}", "type": "realtime"}})
        async for raw in ws:
            event = json.loads(raw)
            kind = event.get("type")
            if kind == "input_audio_buffer.append":
                audio = event["audio"]
                stamp = stamp_of(audio)
                received[stamp] = time.monotonic()
                if response is not None:
                    sent[stamp] = time.monotonic()
                    await emit({"type": "response.output_audio.delta", "response_id": response["id"],
                                "item_id": response["item"], "output_index": 0, "content_index": 0, "delta": audio})
            elif kind == "session.update":
                await emit({"type": "session.updated", "session": event.get("session", {})})
            elif kind == "response.create" and response is None:
                response = {"id": f"resp_{n}", "item": f"item_{n}"}
                await emit({"type": "response.created", "response": {"id": response["id"], "status": "in_progress",
                                                                     "object": "realtime.response", "output": []}})
                for k in range(GREETING_FRAMES):
                    await emit({"type": "response.output_audio.delta", "response_id": response["id"],
                                "item_id": response["item"], "output_index": 0, "content_index": 0,
                                "delta": frame(GREETING_STAMP + (n % 4096) * 16 + k)})
            elif kind == "response.cancel" and response is not None:
                await emit({"type": "response.done", "response": {
                    "id": response["id"], "status": "cancelled", "object": "realtime.response",
                    "output": [], "usage": usage()}})
                response = None
    except Exception:  # a peer that vanished is what a hang-up looks like here
        pass
    finally:
        open_sessions -= 1


def stats(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.startswith("/stats"):
        body = json.dumps({"open": open_sessions, "total": sessions_total,
                           "received": received, "sent": sent}).encode()
        return connection.respond(HTTPStatus.OK, body.decode())
    if request.path.startswith("/reset"):
        received.clear()
        sent.clear()
        return connection.respond(HTTPStatus.OK, "ok")
    return None


async def main(port: int) -> None:
    async with serve(session, "127.0.0.1", port, process_request=stats, max_size=2**22, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
