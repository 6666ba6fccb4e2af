"""The service's own CPU per audio frame, in process: the Twilio transport, the CallBridge and the realtime link,
between an ASGI server stand-in and the SDK's realtime connection over a stand-in websocket, timed with the
process's CPU clock (so a busy machine stretches it less than wall-clock figures).

Per 20 ms of two-way audio the hot path does: one inbound Twilio `media` frame (ASGI receive -> Litestar's
WebSocket or the raw pair -> frame decode -> bridge -> `input_audio_buffer.append` through the SDK or its
socket), one model delta (msgspec decode -> bridge -> Twilio `media` frame out) and the marks and their echoes.
Each configuration is run in its own interpreter with `--tree` on its `sys.path`, so the code as it was (a
checkout of an older commit) and as it is can be compared in one invocation:

    git worktree add /tmp/before <commit>    # or: git archive <commit> | tar -x -C /tmp/before
    .venv/bin/python bench/bench_audio_path.py --before /tmp/before --frames 20000

The ASGI stand-in wraps `send` once the way Litestar's exception-handling layer does for every scope, so the
wrapper cost the service pays is in the figure; the socket I/O, granian and the network are not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: changes the current code can be run without, one at a time (bench-side switches, no app setting)
ABLATIONS = ("raw-frames", "socket-appends", "coalesced-marks")
SID = "MZ" + "3" * 32


def _measure(frames: int, without: frozenset[str] = frozenset()) -> dict[str, float]:
    import msgspec
    from litestar import WebSocket
    from openai.resources.realtime.realtime import AsyncRealtimeConnection

    try:
        from app.telephony.twilio_transport import TwilioTransport
    except ImportError:  # before the move
        from app.voice.twilio_transport import TwilioTransport  # type: ignore[no-redef]
    from app.voice.bridge import CallBridge, CallLimits
    from app.voice.realtime import RealtimeLink

    try:
        from app.web.raw_frames import RAW_ASGI
    except ImportError:
        RAW_ASGI = None

    payload = base64.b64encode(bytes(range(160))).decode()
    media = json.dumps({"event": "media", "streamSid": SID, "sequenceNumber": "1",
                        "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": payload}})
    delta = json.dumps({"type": "response.output_audio.delta", "event_id": "event_1", "response_id": "resp_1",
                        "item_id": "item_1", "output_index": 0, "content_index": 0, "delta": payload}).encode()
    inbound: list[dict[str, Any]] = []
    sent = {"n": 0, "marks": []}

    async def server_receive() -> dict[str, Any]:
        return inbound.pop()

    async def server_send(message: Any) -> None:
        sent["n"] += 1
        text = message.get("text") or ""
        if '"event":"mark"' in text:
            name = json.loads(text)["mark"]["name"]
            sent["marks"].append(name)

    async def capture_response_started(message: Any) -> None:  # Litestar's exception layer, for every scope
        if message["type"] == "http.response.start":
            pass
        await server_send(message)

    appended = {"n": 0}

    class StandInSocket:  # websockets' connection under the SDK
        async def send(self, _text: str) -> None:
            appended["n"] += 1

        async def recv(self, decode: bool = False) -> bytes:
            return delta

    class QuietRecorder:
        caller_turns = 0

        def add_latency(self, entry: dict[str, Any]) -> None:
            pass

    async def no_supervisor(_c: str, _x: str) -> Any:
        raise AssertionError

    decoder = msgspec.json.Decoder()

    async def run() -> dict[str, float]:
        scope: dict[str, Any] = {"type": "websocket", "path": "/twilio/media", "headers": []}
        if RAW_ASGI is not None and "raw-frames" not in without:
            scope[RAW_ASGI] = (server_receive, server_send)
        socket = WebSocket(scope, server_receive, capture_response_started)  # type: ignore[arg-type]
        socket.connection_state = "receive"
        transport = TwilioTransport(socket, stream_sid=SID, call_sid="CA1", calls=None)
        if "coalesced-marks" in without:
            import app.telephony.twilio_transport as twilio_transport

            twilio_transport.MARK_EVERY_MS = 0.0  # type: ignore[misc]  # a mark after every delta, as before
        link = RealtimeLink.__new__(RealtimeLink)
        link._conn = AsyncRealtimeConnection(StandInSocket())  # type: ignore[arg-type]
        import app.voice.realtime as realtime

        if hasattr(realtime, "_underlying_send"):  # appends on the SDK's socket (after issue 10)
            link._socket_send = None if "socket-appends" in without else realtime._underlying_send(link._conn)
        bridge = CallBridge(transport=transport, link=link, recorder=QuietRecorder(),  # type: ignore[arg-type]
                            ask_supervisor=no_supervisor, session_update={}, greeting="", limits=CallLimits())
        # Inbound: the media frames, with the marks Twilio echoes for the deltas sent meanwhile (answered below).
        started = time.process_time()
        batch: list[dict[str, Any]] = []  # what Twilio sends meanwhile, in arrival order
        for i in range(frames):
            event = decoder.decode(await link.connection.recv_bytes())  # the realtime pump's read + decode
            await bridge._on_event(event)
            batch.append({"type": "websocket.receive", "text": media})
            for name in sent["marks"]:  # each mark comes back (its audio has "played")
                batch.append({"type": "websocket.receive",
                              "text": '{"event":"mark","streamSid":"' + SID + '","mark":{"name":"' + name + '"}}'})
            sent["marks"].clear()
            if i % 64 == 63 or i == frames - 1:
                batch.append({"type": "websocket.receive", "text": '{"event":"stop","streamSid":"' + SID + '"}'})
                inbound[:] = reversed(batch)  # popped from the end
                batch.clear()
                # the caller pump until `stop`: media -> append, marks -> heard
                async for caller_event in transport.events():
                    if type(caller_event).__name__ == "AudioIn":
                        await link.append_audio(caller_event.payload)  # type: ignore[union-attr]
                transport.stopped = transport._gone = False  # the next batch goes on the same stream
        cpu = time.process_time() - started
        return {"cpu_us_per_frame_pair": cpu / frames * 1e6, "frames_out": sent["n"] / frames,
                "appends": appended["n"] / frames}

    return asyncio.run(run())


def _child(tree: str, frames: int, without: str = "") -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, __file__, "--child", "--frames", str(frames), "--without", without],
                         cwd=tree, env=env,
                         check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="a checkout of the code to compare with (its root directory)")
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--without", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ablate", action="store_true",
                        help="also run the current code without each change in turn (what each one pays)")
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        import logging
        logging.disable(logging.WARNING)
        print(json.dumps(_measure(args.frames, frozenset(filter(None, args.without.split(","))))))
        return
    runs = ([("before", args.before, "")] if args.before else []) + [("now", str(ROOT), "")]
    if args.ablate:
        runs += [(f"now without {change}", str(ROOT), change) for change in ABLATIONS]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in runs}
    for _ in range(args.rounds):  # interleaved, so a change in the machine's load hits all alike
        for name, tree, without in runs:
            results[name].append(_child(tree, args.frames, without))
    print(f"{args.frames} frames each way, best of {args.rounds} (CPU time of the process)\n")
    print("| code | CPU µs per 20 ms of two-way audio | frames sent to Twilio per delta |")
    print("|---|---:|---:|")
    best = {name: min(r["cpu_us_per_frame_pair"] for r in rs) for name, rs in results.items()}
    for name, rs in results.items():
        print(f"| {name} | {best[name]:.1f} | {rs[0]['frames_out']:.2f} |")
    if "before" in best:
        print(f"\nnow / before: {best['now'] / best['before']:.2f}")


if __name__ == "__main__":
    main()
