"""Pay the openai SDK's first-use costs at start-up, not in the middle of somebody's call.

The first `responses.create` in a process takes ~120 ms of CPU on the event loop (measured on the project
machine, against 2-3 ms for later ones): the resource modules are imported lazily and pydantic builds the
response models' schemas on first parse. Inside a call, that stalls the audio of every live call on the
worker. Here one request is made through the SDK's real request and parsing path, answered in-process by
a canned response (nothing leaves the machine, no tokens are spent), so the process starts warm.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx2
from openai import AsyncOpenAI, DefaultAsyncHttpxClient

log = logging.getLogger(__name__)

_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "warm_up",
    "description": "warm-up",
    "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"],
                   "additionalProperties": False},
    "strict": True,
}

# Shaped like a real Responses API reply (every top-level field it sends), with both kinds of output the
# supervisor and summaries read — a tool call and a message — so each field's schema is built here.
_RESPONSE: dict[str, Any] = {
    "id": "resp_warm_up", "object": "response", "created_at": 0, "completed_at": 0, "status": "completed",
    "error": None, "incomplete_details": None, "instructions": "warm-up", "max_output_tokens": None,
    "model": "warm-up",
    "output": [
        {"type": "function_call", "id": "fc_warm_up", "call_id": "call_warm_up", "name": "warm_up",
         "arguments": "{\"x\": \"\"}", "status": "completed"},
        {"type": "message", "id": "msg_warm_up", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "ok", "annotations": [], "logprobs": []}]},
    ],
    "parallel_tool_calls": False, "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
    "store": False, "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto", "tools": [{**_TOOL, "description": "warm-up"}], "top_p": 1.0, "truncation": "disabled",
    "usage": {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2},
    "user": None, "metadata": {},
}


async def warm_openai_sdk() -> None:
    started = time.perf_counter()
    transport = httpx2.MockTransport(lambda _request: httpx2.Response(200, json=_RESPONSE))
    try:
        async with AsyncOpenAI(
            api_key="warm-up",
            base_url="https://warm-up.invalid/v1",
            http_client=DefaultAsyncHttpxClient(transport=transport),
            max_retries=0,
        ) as client:
            _ = client.realtime  # imports the realtime resource before the first call connects
            response = await client.responses.create(
                model="warm-up", instructions="warm-up", input=[{"role": "user", "content": "warm-up"}],
                tools=[_TOOL],  # type: ignore[list-item]
                parallel_tool_calls=False, store=False,
            )
            _ = response.output_text
    except Exception as exc:  # a warm-up must never stop the service from starting
        log.warning("openai SDK warm-up failed: %r", exc)
        return
    log.info("openai SDK warmed up in %.0f ms", (time.perf_counter() - started) * 1000)
