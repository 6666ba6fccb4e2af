"""The chat-supervisor: a text model (Responses API) that uses the business tools and says what to say next.

It runs as a task beside the audio path. Its loop is bounded in rounds and in total time; whatever goes
wrong, the caller hears an honest fallback instead of silence.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI

from app.billing.pricing import from_responses
from app.db.models import EventKind
from app.tools import ToolContext, run_tool, tool_schemas
from app.voice.recorder import CallRecorder

log = logging.getLogger(__name__)

FALLBACK = "I'm sorry, I can't check that right now. Can I take a message for the team?"
MAX_ROUNDS = 6


@dataclass(frozen=True, slots=True)
class SupervisorAnswer:
    text: str
    ms: int
    ok: bool


class Supervisor:
    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        instructions: str,
        tools: ToolContext,
        recorder: CallRecorder,
        timeout_seconds: float,
        max_rounds: int = MAX_ROUNDS,
        call_tools: Sequence[dict[str, Any]] = (),
        run_call_tool: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._instructions = instructions
        self._tools = tools
        self._recorder = recorder
        self._timeout = timeout_seconds
        self._max_rounds = max_rounds
        # Call control the engine's voice model can't do itself (GPT-Live: hang up, transfer), beside the
        # business tools; the business tools and their scope are unchanged.
        self._call_tools = list(call_tools)
        self._call_tool_names = {str(t.get("name")) for t in self._call_tools}
        self._run_call_tool = run_call_tool

    async def answer(self, conversation: str, context: str) -> SupervisorAnswer:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                text = await self._loop(conversation, context)
            ok = True
        except TimeoutError:
            self._recorder.add(EventKind.ERROR, "supervisor timed out", {"source": "supervisor",
                                                                        "timeout_s": self._timeout})
            text, ok = FALLBACK, False
        except Exception as exc:
            log.warning("supervisor failed: %r", exc)
            self._recorder.add(EventKind.ERROR, f"supervisor failed: {type(exc).__name__}",
                               {"source": "supervisor", "detail": str(exc)[:500]})
            text, ok = FALLBACK, False
        return SupervisorAnswer(text=text, ms=int((time.monotonic() - started) * 1000), ok=ok)

    async def _loop(self, conversation: str, context: str) -> str:
        items: list[dict[str, Any]] = [
            {
                "role": "user",
                "content": f"Conversation so far:\n{conversation or '(nothing yet)'}\n\n"
                f"Receptionist's note on the caller's last message: {context or '(none)'}",
            }
        ]
        for _ in range(self._max_rounds):
            response = await self._client.responses.create(
                model=self._model,
                instructions=self._instructions,
                input=items,  # type: ignore[arg-type]
                tools=[*tool_schemas(), *self._call_tools],  # type: ignore[arg-type]
                parallel_tool_calls=False,
                store=False,
            )
            if response.usage is not None:
                self._recorder.add_usage("supervisor", self._model, from_responses(response.usage.model_dump()))
            calls = [item for item in response.output if item.type == "function_call"]
            if not calls:
                text = response.output_text.strip()
                if not text:
                    raise RuntimeError("the supervisor returned no words")
                return text
            for call in calls:
                self._recorder.add(EventKind.TOOL_CALL, call.name, {"name": call.name, "arguments": call.arguments,
                                                                    "source": "supervisor"})
                if call.name in self._call_tool_names and self._run_call_tool is not None:
                    result = await self._run_call_tool(call.name, call.arguments)
                else:
                    result = await run_tool(self._tools, call.name, call.arguments)
                if "error" in result:
                    self._recorder.add(EventKind.TOOL_RESULT, call.name, {"name": call.name,
                                                                          "error": result["error"]})
                else:
                    self._recorder.add(EventKind.TOOL_RESULT, call.name, {"name": call.name, "result": result})
                items.append(
                    {"type": "function_call", "call_id": call.call_id, "name": call.name,
                     "arguments": call.arguments}
                )
                items.append({"type": "function_call_output", "call_id": call.call_id,
                              "output": json.dumps(result, default=str)})
        raise RuntimeError(f"no answer after {self._max_rounds} rounds of tool calls")
