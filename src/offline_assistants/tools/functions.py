"""Function tools: the model writes the call, the client runs it (the run waits in `requires_action`).

A call's arguments are held to the function's parameter schema narrowed by the user's request
(tools/arguments.py), in whichever call syntax the model speaks (llm/toolcalls.py): the same JSON either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from offline_assistants.llm.backend import Constraint, JsonSchema, ToolOption
from offline_assistants.llm.toolcalls import OURS, CallSyntax, WrittenCall
from offline_assistants.tools import arguments
from offline_assistants.tools.base import Emit, Ran, ToolContext, key
from offline_assistants.tools.closing import close_json

NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
BIAS = -2.5  # added to each function's calibrated score (engine/decision.py: fitted on our labelled set)
DESCRIPTION_CHARS = 160


def response_text(output: str) -> str:
    """A tool's reply as our syntax shows it to the model."""
    return f"<tool_response>\n{output}\n</tool_response>"


@dataclass
class FunctionCall:
    id: str
    name: str
    arguments: str = ""
    output: str | None = None  # what the client submitted (submit_tool_outputs)
    type: str = "function"

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments, "output": self.output}}


class _Arguments:
    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.text = ""

    def feed(self, piece: str) -> None:
        self.text += piece
        self.emit({"function": {"arguments": piece}})

    def finish(self) -> str:
        return self.text


def sentence(name: str, description: str | None) -> str:
    """What choosing a function says, continuing "I will": its name and the first clause of its description."""
    text = (description or "").strip().split(". ")[0].rstrip(".")[:DESCRIPTION_CHARS]
    if not text:
        return f" use {name}."
    return f" use {name} to {text[0].lower()}{text[1:]}."


class FunctionTool:
    type = "function"
    runs_here = False
    retries = False
    parallel = True

    def available(self, spec: dict[str, Any], context: ToolContext) -> bool:
        return True

    def native_name(self, spec: dict[str, Any]) -> str:
        return str(spec["function"]["name"])

    def option(self, spec: dict[str, Any], context: ToolContext) -> ToolOption | None:
        fn = spec["function"]
        if context.said is not None and not arguments.says_required_values(fn.get("parameters"), context.said()):
            return None
        return ToolOption(key(self.type, fn["name"]), self.type, fn["name"],
                          sentence(fn["name"], fn.get("description")), BIAS, about=spec)

    def describe(self, spec: dict[str, Any]) -> str:
        fn = spec["function"]
        params = json.dumps(fn.get("parameters") or NO_PARAMETERS)
        return f"- {fn['name']}: {fn.get('description') or ''} Arguments (JSON Schema): {params}"

    def function_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return spec

    def new_call(self, spec: dict[str, Any], call_id: str) -> FunctionCall:
        return FunctionCall(call_id, spec["function"]["name"])

    def parse_call(self, api: dict[str, Any]) -> FunctionCall:
        fn = api["function"]
        return FunctionCall(api["id"], fn["name"], fn.get("arguments") or "", fn.get("output"))

    def opening(self, spec: dict[str, Any], syntax: CallSyntax) -> str:
        return syntax.opening(spec["function"]["name"])

    def constraint(self, spec: dict[str, Any], request: str, syntax: CallSyntax,
                   fixed: dict[str, Any] | None = None) -> Constraint:
        # No parameters is an empty parameter list (the API's rule), not "any object".
        schema = arguments.narrow(spec["function"].get("parameters") or NO_PARAMETERS, request)
        return JsonSchema(arguments.fix(schema, fixed or {}))

    def writer(self, emit: Emit, syntax: CallSyntax) -> _Arguments:
        return _Arguments(emit)

    def record(self, call: FunctionCall, body: str, syntax: CallSyntax) -> None:
        call.arguments = body

    def cut_short(self, body: str, syntax: CallSyntax) -> str:
        return close_json(body)

    def again(self, spec: dict[str, Any], call: FunctionCall, request: str) -> dict[str, Any] | None:
        return arguments.repeat(spec["function"].get("parameters"), call.arguments, request)

    def run(self, context: ToolContext, spec: dict[str, Any], call: FunctionCall) -> Ran | None:
        return None  # the client runs functions: submit_tool_outputs brings the output

    def transcript(self, call: FunctionCall) -> str:
        return OURS.call(call.name, call.arguments)

    def reply(self, result: str) -> str:
        return response_text(result)

    def written(self, call: FunctionCall) -> WrittenCall:
        return WrittenCall(call.name, call.arguments)

    def result_of(self, call: FunctionCall) -> str:
        return call.output or ""
