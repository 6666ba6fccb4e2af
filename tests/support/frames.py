"""Hypothesis strategies for malformed caller frames: arbitrary JSON, real frames with one part replaced by
something of another shape, very deep nesting, huge or non-JSON text. Shared by the parser fuzz tests, the
end-to-end runs inside live calls, and the fault bench.

None of them is a caller's real `stop` (Twilio) or `hangup` (browser): those are the only frames that may
end a call, so the oracle here is Python's own json reading of the frame, not the app's parser."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def _dumps(value: Any) -> str:
    return json.dumps(value)  # allow_nan: Infinity / NaN literals are exactly what a sloppy peer sends


def twilio_frames(stream_sid: str = "MZ0") -> list[dict[str, Any]]:
    return [
        {"event": "media", "sequenceNumber": "5", "streamSid": stream_sid,
         "media": {"track": "inbound", "chunk": "4", "timestamp": "80", "payload": "//////////8="}},
        {"event": "mark", "streamSid": stream_sid, "mark": {"name": "nothing:1"}},
        {"event": "dtmf", "streamSid": stream_sid, "dtmf": {"track": "inbound_track", "digit": "5"}},
        {"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
         "start": {"streamSid": stream_sid, "callSid": "CA0", "accountSid": "AC0", "tracks": ["inbound"],
                   "customParameters": {"session": "x"},
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}},
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    ]


BROWSER_FRAMES: list[dict[str, Any]] = [{"type": "played", "item_id": "item_1", "ms": 120, "idle": True,
                                         "cleared": False}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, frames: list[dict[str, Any]]) -> str:
    """A real frame with one field (at any depth) replaced by any JSON value, or removed."""
    frame = draw(st.sampled_from(frames))
    path = draw(st.sampled_from(_paths(frame)))
    if draw(st.booleans()):
        return _dumps(_replace(frame, path, draw(json_values)))
    parent = _replace(frame, path[:-1], {k: v for k, v in _get(frame, path[:-1]).items() if k != path[-1]})
    return _dumps(parent)


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def deep(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=17, max_value=3_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = opener * depth + "1" + closer * depth
    return draw(st.sampled_from([inner, '{"event":"media","media":' + inner + "}",
                                 '{"type":"played","ms":' + inner + "}"]))


odd_text = st.sampled_from(["", " ", "null", "{", "}{", '{"event":"media"', "\x00", "\ud800".encode(
    "utf-8", "surrogatepass").decode("utf-8", "replace"), "x" * 70_000, '{"event":"media","media":{"payload":"'
    + "A" * 70_000 + '"}}', '{"ms": 1e999, "type": "played"}', '{"type":"played","ms":Infinity}',
    '{"type":"played","ms":NaN}', '{"event":"mark","mark":{"name":' + "1" * 5000 + "}}"])


def _not_an_ending(text: str, key: str, ending: str) -> bool:
    """Not the caller ending the call: not a `stop`/`hangup`, nor keypad 0 (a transfer to a person)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return True
    if not isinstance(value, dict):
        return True
    dtmf = value.get("dtmf")
    return value.get(key) != ending and not (isinstance(dtmf, dict) and dtmf.get("digit") == "0")


def malformed_twilio_frames(stream_sid: str = "MZ0") -> st.SearchStrategy[str]:
    return (mutated(twilio_frames(stream_sid)) | json_values.map(_dumps) | deep() | odd_text
            | st.text(max_size=50)).filter(lambda t: _not_an_ending(t, "event", "stop"))


def malformed_browser_frames() -> st.SearchStrategy[str]:
    return (mutated(BROWSER_FRAMES) | json_values.map(_dumps) | deep() | odd_text
            | st.text(max_size=50)).filter(lambda t: _not_an_ending(t, "type", "hangup"))
