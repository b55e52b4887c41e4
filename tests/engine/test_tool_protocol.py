"""A tool is one plug-in and one registry line: a tool of a new type, registered in one place, is offered,
decided, written under its constraint, run, recorded in its step, read back by the model and linked from the
answer, with nothing in engine/ knowing it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from test_tooling import start

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import Constraint, JsonSchema, ToolOption
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.llm.toolcalls import OURS, CallSyntax, WrittenCall
from offline_assistants.schemas.common import ListParams
from offline_assistants.tools import registry
from offline_assistants.tools.base import Emit, Link, Ran, ToolContext, key
from offline_assistants.tools.closing import close_json

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


@dataclass
class ShoutCall:
    id: str
    text: str = ""
    result: str | None = None
    type: str = "x_shout"
    name: str = "shout"

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "x_shout": {"text": self.text, "result": self.result}}


class _Body:
    def __init__(self, emit: Emit) -> None:
        self.emit, self.text = emit, ""

    def feed(self, piece: str) -> None:
        self.text += piece
        self.emit({"x_shout": {"text": piece}})

    def finish(self) -> str:
        return self.text


class ShoutTool:
    """Upper-cases the user's words, in the server; links its result."""

    type = "x_shout"
    runs_here = True
    retries = False
    parallel = False

    def available(self, spec: dict[str, Any], context: ToolContext) -> bool:
        return True

    def native_name(self, spec: dict[str, Any]) -> str:
        return "shout"

    def option(self, spec: dict[str, Any], context: ToolContext) -> ToolOption:
        return ToolOption(key(self.type, "shout"), self.type, "shout", " shout it.", 0.0)

    def describe(self, spec: dict[str, Any]) -> str:
        return "- shout: upper-cases text"

    def function_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"type": "function", "function": {"name": "shout", "parameters": SCHEMA}}

    def new_call(self, spec: dict[str, Any], call_id: str) -> ShoutCall:
        return ShoutCall(call_id)

    def parse_call(self, api: dict[str, Any]) -> ShoutCall:
        return ShoutCall(api["id"], api["x_shout"]["text"], api["x_shout"]["result"])

    def opening(self, spec: dict[str, Any], syntax: CallSyntax) -> str:
        return syntax.opening("shout")

    def constraint(self, spec: dict[str, Any], request: str, syntax: CallSyntax,
                   fixed: dict[str, Any] | None = None) -> Constraint:
        return JsonSchema(SCHEMA)

    def writer(self, emit: Emit, syntax: CallSyntax) -> _Body:
        return _Body(emit)

    def record(self, call: ShoutCall, body: str, syntax: CallSyntax) -> None:
        call.text = json.loads(body)["text"]

    def cut_short(self, body: str, syntax: CallSyntax) -> str:
        return close_json(body)

    def again(self, spec: dict[str, Any], call: ShoutCall, request: str) -> dict[str, Any] | None:
        return None

    def run(self, context: ToolContext, spec: dict[str, Any], call: ShoutCall) -> Ran:
        call.result = call.text.upper()
        return Ran(call.result, links=[Link("LOUD", {"type": "x_loud"}, "each", " (LOUD)")])

    def transcript(self, call: ShoutCall) -> str:
        return OURS.call("shout", json.dumps({"text": call.text}))

    def reply(self, result: str) -> str:
        return f"<shouted>{result}</shouted>"

    def written(self, call: ShoutCall) -> WrittenCall:
        return WrittenCall("shout", json.dumps({"text": call.text}))

    def result_of(self, call: ShoutCall) -> str:
        return call.result or ""


def test_a_registered_tool_is_offered_decided_written_run_and_rendered(make_engine: Callable[..., Engine]) -> None:
    decision = {" shout it.": 0.0, " answer from what I already know.": -5.0}
    backend = CannedBackend([decision, '{"text": "hello there"}', "Done."])
    engine = make_engine(backend, tool_registry=(*registry.REGISTRY, lambda services: ShoutTool()))
    thread_id, run_id, events, ended = start(engine, [{"type": "x_shout"}], "Shout hello there")
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "completed"
    assert "- shout: upper-cases text" in backend.text(backend.prompts[0])  # offered in the system prompt
    assert [" shout it.", " answer from what I already know."] in backend.scored  # decided among the options
    assert isinstance(backend.samplings[0].constraint, JsonSchema)  # written under its constraint
    steps = engine.runs.list_steps(thread_id, run_id, ListParams(order="asc")).data
    assert steps[0].step_details["tool_calls"][0]["x_shout"] == {"text": "hello there", "result": "HELLO THERE"}
    assert "<shouted>HELLO THERE</shouted>" in backend.text(backend.prompts[-1])  # read back in its own words
    message = engine.threads.list_messages(thread_id, ListParams(), run_id=run_id).data[0]
    text = message.content[0]["text"]
    assert text["value"] == "Done. (LOUD)" and text["annotations"][0]["type"] == "x_loud"  # and linked


def test_an_unregistered_extension_tool_is_accepted_and_not_offered(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["Plain answer."])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [{"type": "x_shout"}])
    assert ended.wait(10)
    assert engine.runs.get(thread_id, run_id).status == "completed"
    assert backend.scored == []  # nothing to decide between
