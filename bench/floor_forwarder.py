"""The floor for load runs: a bare Twilio Media Streams <-> Realtime forwarder, nothing a real call needs.

On `start` it connects to the model, sends `session.update` (pcmu both ways) and `response.create`, then
relays caller `media` payloads as `input_audio_buffer.append` and `response.output_audio.delta` as `media`,
text in, text out, no validation, no marks, no records. Nothing can add less per frame in Python over the
same websockets library; the service's figures are read as ratios to this one's, measured in the same run.

    python bench/floor_forwarder.py PORT MODEL_WS_URL
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

MODEL_URL = ""


async def call(caller: ServerConnection) -> None:
    stream_sid = ""
    async for raw in caller:
        message = json.loads(raw)
        if message.get("event") == "start":
            stream_sid = message["streamSid"]
            break
    else:
        return
    async with connect(MODEL_URL, additional_headers={"Authorization": "Bearer floor"}, compression=None) as model:
        await model.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}},
                                          "output": {"format": {"type": "audio/pcmu"}}}}}))
        await model.send(json.dumps({"type": "response.create"}))

        async def up() -> None:
            async for raw in caller:
                message = json.loads(raw)
                if message.get("event") == "media":
                    await model.send(json.dumps({"type": "input_audio_buffer.append",
                                                 "audio": message["media"]["payload"]}))
                elif message.get("event") == "stop":
                    return

        async def down() -> None:
            async for raw in model:
                event = json.loads(raw)
                if event.get("type") == "response.output_audio.delta":
                    await caller.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                                  "media": {"payload": event["delta"]}}))

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)


async def main(port: int) -> None:
    async with serve(call, "127.0.0.1", port, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    MODEL_URL = sys.argv[2]
    asyncio.run(main(int(sys.argv[1])))
