"""Custom tools (the Responses API's `{"type": "custom"}`): the model writes free-form input, the client runs it.

To the model a custom tool is a function of one string, `input`, in whichever call syntax it speaks, so it is
decided and written as functions are; a `regex` format holds that string to the pattern under the grammar. A
`lark` grammar has no translation to llama.cpp's GBNF here: its input is free text (docs/responses.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from offline_assistants.llm.backend import Constraint, JsonSchema, ToolOption
from offline_assistants.llm.toolcalls import OURS, CallSyntax, WrittenCall
from offline_assistants.tools.base import Emit, Ran, ToolContext, key
from offline_assistants.tools.closing import close_json
from offline_assistants.tools.functions import BIAS, response_text, sentence


@dataclass
class CustomCall:
    id: str
    name: str
    input: str = ""
    output: str | None = None  # what the client sent back (a custom_tool_call_output)
    type: str = "custom"

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": "custom", "custom": {"name": self.name, "input": self.input,
                                                              "output": self.output}}


def input_schema(spec: dict[str, Any]) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string"}
    fmt = spec["custom"].get("format") or {}
    if fmt.get("type") == "grammar" and fmt.get("syntax") == "regex":
        text["pattern"] = fmt["definition"]
    return {"type": "object", "properties": {"input": text}, "required": ["input"], "additionalProperties": False}


def input_of(body: str) -> str:
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return body
    return str(value.get("input", "")) if isinstance(value, dict) else body


class _Input:
    """Streams the input as the model writes it: its JSON string, unescaped piece by piece when whole."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.text = ""

    def feed(self, piece: str) -> None:
        self.text += piece

    def finish(self) -> str:
        self.emit({"custom": {"input": input_of(self.text)}})
        return self.text


class CustomTool:
    type = "custom"
    runs_here = False
    retries = False
    parallel = False

    def available(self, spec: dict[str, Any], context: ToolContext) -> bool:
        return True

    def native_name(self, spec: dict[str, Any]) -> str:
        return str(spec["custom"]["name"])

    def option(self, spec: dict[str, Any], context: ToolContext) -> ToolOption:
        body = spec["custom"]
        about = {"type": "function", "function": {"name": body["name"], "description": body.get("description")}}
        return ToolOption(key(self.type, body["name"]), self.type, body["name"],
                          sentence(body["name"], body.get("description")), BIAS, about=about)

    def describe(self, spec: dict[str, Any]) -> str:
        body = spec["custom"]
        return f"- {body['name']}: {body.get('description') or ''} Arguments (JSON Schema): " \
               f"{json.dumps(input_schema(spec))}"

    def function_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        body = spec["custom"]
        return {"type": "function", "function": {"name": body["name"], "description": body.get("description") or "",
                                                 "parameters": input_schema(spec)}}

    def new_call(self, spec: dict[str, Any], call_id: str) -> CustomCall:
        return CustomCall(call_id, spec["custom"]["name"])

    def parse_call(self, api: dict[str, Any]) -> CustomCall:
        body = api["custom"]
        return CustomCall(api["id"], body["name"], body.get("input") or "", body.get("output"))

    def opening(self, spec: dict[str, Any], syntax: CallSyntax) -> str:
        return syntax.opening(spec["custom"]["name"])

    def constraint(self, spec: dict[str, Any], request: str, syntax: CallSyntax,
                   fixed: dict[str, Any] | None = None) -> Constraint:
        return JsonSchema(input_schema(spec))

    def writer(self, emit: Emit, syntax: CallSyntax) -> _Input:
        return _Input(emit)

    def record(self, call: CustomCall, body: str, syntax: CallSyntax) -> None:
        call.input = input_of(body)

    def cut_short(self, body: str, syntax: CallSyntax) -> str:
        return close_json(body)

    def again(self, spec: dict[str, Any], call: CustomCall, request: str) -> dict[str, Any] | None:
        return None

    def run(self, context: ToolContext, spec: dict[str, Any], call: CustomCall) -> Ran | None:
        return None  # the client runs it, and sends its output back

    def transcript(self, call: CustomCall) -> str:
        return OURS.call(call.name, json.dumps({"input": call.input}))

    def reply(self, result: str) -> str:
        return response_text(result)

    def written(self, call: CustomCall) -> WrittenCall:
        return WrittenCall(call.name, json.dumps({"input": call.input}))

    def result_of(self, call: CustomCall) -> str:
        return call.output or ""
