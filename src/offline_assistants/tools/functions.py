"""Function tools: the model writes the call, the client runs it (the run waits in `requires_action`).

A call is written as the Hermes-style `<tool_call>` JSON that small instruct models know best, its arguments
held to the function's parameter schema narrowed by the user's request (tools/arguments.py).
"""

from __future__ import annotations

import json
from typing import Any

from offline_assistants.llm.backend import Constraint, JsonSchema
from offline_assistants.tools import arguments
from offline_assistants.tools.base import Emit, Ran, ToolContext

CALL_CLOSE = "}\n</tool_call>"


def call_text(name: str, args: str) -> str:
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": {args}}}\n</tool_call>'


def response_text(output: str) -> str:
    return f"<tool_response>\n{output}\n</tool_response>"


class _Arguments:
    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.text = ""

    def feed(self, piece: str) -> None:
        self.text += piece
        self.emit({"function": {"arguments": piece}})

    def finish(self) -> str:
        return self.text


class FunctionTool:
    type = "function"

    def describe(self, spec: dict[str, Any]) -> str:
        fn = spec["function"]
        params = json.dumps(fn.get("parameters") or {"type": "object", "properties": {}})
        return f"- {fn['name']}: {fn.get('description') or ''} Arguments (JSON Schema): {params}"

    def opening(self, spec: dict[str, Any]) -> str:
        return call_text(spec["function"]["name"], "")[: -len(CALL_CLOSE)]

    def constraint(self, spec: dict[str, Any], request: str, fixed: dict[str, Any] | None = None) -> Constraint:
        schema = arguments.narrow(spec["function"].get("parameters"), request)
        return JsonSchema(arguments.fix(schema, fixed or {}))

    def entry(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"type": "function", "function": {"name": spec["function"]["name"], "arguments": "", "output": None}}

    def writer(self, emit: Emit) -> _Arguments:
        return _Arguments(emit)

    def record(self, entry: dict[str, Any], body: str) -> None:
        entry["function"] = {**entry["function"], "arguments": body}

    def run(self, context: ToolContext, spec: dict[str, Any], entry: dict[str, Any]) -> Ran | None:
        return None  # the client runs functions: submit_tool_outputs brings the output

    def transcript(self, entry: dict[str, Any]) -> tuple[str, str]:
        fn = entry["function"]
        return call_text(fn["name"], fn["arguments"]), response_text(fn.get("output") or "")

    def again(self, spec: dict[str, Any], written: str, request: str) -> dict[str, Any] | None:
        """The values of a second, parallel call of this function, when the request asks for one."""
        return arguments.repeat(spec["function"].get("parameters"), written, request)
