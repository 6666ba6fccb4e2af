"""The supervisor loop over the Responses API (the OpenAI double through the real SDK): tool rounds,
the bounds on rounds and time, and the honest fallback whenever it can't answer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from openai import AsyncOpenAI

from app.db.engine import Database
from app.db.models import EventKind
from app.db.services import BusinessScope
from app.tools import ToolContext
from app.voice.prompts import CallerContext, supervisor_instructions
from app.voice.recorder import CallRecorder
from app.voice.supervisor import FALLBACK, Supervisor
from tests.doubles.openai_double import OpenAIDouble
from tests.support.data import create_owner

pytest_plugins = ("tests.support.voice_fixtures",)


async def make_supervisor(db: Database, double: OpenAIDouble, *, timeout: float = 3.0, rounds: int = 6
                          ) -> tuple[Supervisor, CallRecorder]:
    _user, business = await create_owner(db)
    recorder = CallRecorder(db, call_id=uuid.uuid4(), session_id=uuid.uuid4(), business_id=business.id,
                            started_at=datetime.now(UTC))
    client = AsyncOpenAI(api_key="test-key", base_url=double.base_url, max_retries=0)
    supervisor = Supervisor(
        client, model="gpt-4.1", instructions=supervisor_instructions(business, CallerContext()),
        tools=ToolContext(scope=BusinessScope(db.session_maker, business.id), business=business),
        recorder=recorder, timeout_seconds=timeout, max_rounds=rounds,
    )
    return supervisor, recorder


def kinds(recorder: CallRecorder) -> list[tuple[str, str]]:
    return [(e.kind, e.text) for e in recorder._pending]


async def test_tool_rounds_then_text(call_db: Database, double: OpenAIDouble) -> None:
    double.responses.for_model("gpt-4.1").function_call("get_business_info", {}).function_call(
        "check_availability", {"service": "Massage", "date": "2026-03-02"}
    ).text("We're open nine to five on weekdays.")
    supervisor, recorder = await make_supervisor(call_db, double)
    answer = await supervisor.answer("Caller: When are you open?", "opening hours")
    assert answer.ok and answer.text == "We're open nine to five on weekdays." and answer.ms > 0
    assert kinds(recorder) == [("tool_call", "get_business_info"), ("tool_result", "get_business_info"),
                               ("tool_call", "check_availability"), ("tool_result", "check_availability")]
    requests = double.response_requests
    assert len(requests) == 3 and all(r["parallel_tool_calls"] is False and r["model"] == "gpt-4.1"
                                      for r in requests)
    assert "Sam's Salon" in requests[0]["instructions"]
    # Each round carries every earlier call and its output; a refused call goes back as a structured error.
    last = requests[2]["input"]
    assert [i.get("type") for i in last[1:]] == ["function_call", "function_call_output"] * 2
    assert json.loads(last[4]["output"])["error"]["code"] == "invalid"
    assert recorder._sources["supervisor"].tokens.text_input > 0


async def test_rounds_are_bounded(call_db: Database, double: OpenAIDouble) -> None:
    script = double.responses.for_model("gpt-4.1")
    for _ in range(5):
        script.function_call("get_business_info", {})
    supervisor, recorder = await make_supervisor(call_db, double, rounds=3)
    answer = await supervisor.answer("Caller: hi", "hi")
    assert not answer.ok and answer.text == FALLBACK
    assert len(double.response_requests) == 3
    assert recorder._pending[-1].kind == EventKind.ERROR.value and "3 rounds" in recorder._pending[-1].data["detail"]


async def test_timeout_gives_fallback(call_db: Database, double: OpenAIDouble) -> None:
    double.responses.for_model("gpt-4.1").delay(3).text("too late")
    supervisor, recorder = await make_supervisor(call_db, double, timeout=1.0)
    answer = await supervisor.answer("Caller: hi", "hi")
    assert not answer.ok and answer.text == FALLBACK and 900 <= answer.ms < 2000
    assert recorder._pending[-1].text == "supervisor timed out"


async def test_api_error_gives_fallback(call_db: Database, double: OpenAIDouble) -> None:
    double.responses.for_model("gpt-4.1").error(500)
    supervisor, recorder = await make_supervisor(call_db, double)
    answer = await supervisor.answer("Caller: hi", "hi")
    assert not answer.ok and answer.text == FALLBACK
    assert recorder._pending[-1].kind == "error" and "InternalServerError" in recorder._pending[-1].text
