"""What a fresh realtime session needs to carry on a call: its configuration, the conversation so far as
conversation items, and the tool calls still waiting for their result. Used when the realtime socket drops
mid-call and when a call rolls over to a new session before OpenAI's 60-minute limit.

A reconnected session never hears the earlier audio, only these items; the partial answer the caller heard
before a cut is among them (truncated to what was played), so the model knows what it already said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.db.models import EventKind
from app.i18n.lines import Line
from app.i18n.lines import text as line_text

# Issue 16: the bridge says these in the call's language (app.i18n.lines); the English ones, for reference.
RESUME_LINE = line_text(Line.RESUME, "en-US")
RESUME_WAITING_LINE = line_text(Line.RESUME_WAITING, "en-US")
MOVE_LINE = line_text(Line.MOVED, "en-US")


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a call that moved here from another instance picks up: the client events that open its new
    realtime session (restore + the resume line) instead of a greeting, and the call's counters so far."""

    opening: list[dict[str, Any]]
    elapsed_seconds: float = 0.0
    turn: int = 0
    transfer_requested: bool = False
    open_tool_calls: dict[str, tuple[str, str]] = field(default_factory=dict)


def restore_events(session_update: Mapping[str, Any], turns: Iterable[tuple[str, str]],
                   open_tool_calls: Mapping[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Client events, in order, that rebuild a call's state in a new Realtime session."""
    events: list[dict[str, Any]] = [{"type": "session.update", "session": dict(session_update)}]
    for kind, text in turns:
        if kind == EventKind.CALLER.value:
            item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        else:
            item = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}
        events.append({"type": "conversation.item.create", "item": item})
    for call_id, (name, arguments) in open_tool_calls.items():
        # The result arrives later as a function_call_output for this call_id: the call must exist first.
        events.append({"type": "conversation.item.create",
                       "item": {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}})
    return events


def resume_response(line: str) -> dict[str, Any]:
    return {"type": "response.create",
            "response": {"instructions": f'The line dropped for a moment. Say exactly: "{line}"',
                         "tool_choice": "none"}}


def heard_part(text: str, heard_ms: int, produced_ms: int) -> str:
    """The words of a cut answer the caller heard: its transcript so far, cut in proportion to the audio
    played, at a word boundary."""
    words = text.split()
    if not words or produced_ms <= 0:
        return ""
    share = max(0.0, min(1.0, heard_ms / produced_ms))
    kept = words[: round(len(words) * share)]
    return " ".join(kept)
