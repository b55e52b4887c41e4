"""The code interpreter as a tool: the model writes Python into a fenced block, the thread's kernel runs it.

What the kernel printed comes back to the model (clipped: the step keeps it all), images and written files
become files of the run, and a failure is marked so the engine may offer one retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline_assistants.llm.backend import CodeBlock, Constraint, JsonSchema, ToolOption
from offline_assistants.llm.toolcalls import CODE_CLOSE, CODE_OPEN, CallSyntax, WrittenCall
from offline_assistants.tools.base import Emit, Link, Ran, ToolContext, key
from offline_assistants.tools.closing import close_python
from offline_assistants.tools.code_interpreter.runner import CodeRunner, ExecutionResult

NAME = "python"  # what code_interpreter is called where a template lists tools as functions
SENTENCE = " run Python code to compute it."  # what choosing it says, continuing "I will" (engine/decision.py)
BIAS = -2.5  # added to its calibrated score (engine/decision.py: fitted on our labelled set)
ARGUMENTS = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}
PROMPT_OUTPUT_CHARS = 2000  # how much of a tool's output the model reads back; the step keeps it all
DESCRIPTION = ("- python: runs Python code in a Jupyter notebook and shows its output. Files you were given are in "
               "the current directory.")


def code_text(code: str) -> str:
    return f"{CODE_OPEN}{code}{CODE_CLOSE}"


def output_text(logs: str) -> str:
    return f"Output:\n{logs}" if logs else "Output: (nothing)"


def clip(text: str) -> str:
    if len(text) > PROMPT_OUTPUT_CHARS:
        return text[: PROMPT_OUTPUT_CHARS // 2] + "\n[...]\n" + text[-PROMPT_OUTPUT_CHARS // 2:]
    return text


def for_model(result: ExecutionResult) -> str:
    text = clip(result.logs)
    if result.images:
        text += f"\n[{len(result.images)} image(s) shown to the user]"
    if result.state_lost:
        text += "\n[The Python session was restarted: variables from earlier code are gone.]"
    if result.error == "timeout":
        text += "\n[The code was stopped: it ran past the time limit.]"
    return text.strip()


@dataclass
class CodeCall:
    id: str
    input: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)
    type: str = "code_interpreter"
    name: str = NAME

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "type": "code_interpreter",
                "code_interpreter": {"input": self.input, "outputs": self.outputs}}


class _Fence:
    """Streams code pieces, holding back what might be the start of the closing fence."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.text = ""
        self.pending = ""

    def _out(self, piece: str) -> None:
        self.emit({"code_interpreter": {"input": piece}})

    def feed(self, piece: str) -> None:
        self.text += piece
        self.pending += piece
        keep = len(CODE_CLOSE)
        if len(self.pending) > keep:
            out, self.pending = self.pending[:-keep], self.pending[-keep:]
            self._out(out)

    def finish(self) -> str:
        rest = self.pending[: -len(CODE_CLOSE)] if self.pending.endswith(CODE_CLOSE) else self.pending
        if rest:
            self._out(rest)
        self.pending = ""
        return self.text[: -len(CODE_CLOSE)] if self.text.endswith(CODE_CLOSE) else self.text


class _JsonCode:
    """Streams the code of a call written as JSON arguments ({"code": "..."}), unescaped as it comes."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.text = ""
        self.sent = 0

    def feed(self, piece: str) -> None:
        self.text += piece
        code = _partial_code(self.text)
        if len(code) > self.sent:
            self.emit({"code_interpreter": {"input": code[self.sent:]}})
            self.sent = len(code)

    def finish(self) -> str:
        return self.text


def _partial_code(text: str) -> str:
    """The code of `{"code": "...` so far, an escape cut in half held back."""
    start = text.find('"', text.find(":", text.find('"code"') + 6) + 1) if '"code"' in text else -1
    if start < 0:
        return ""
    body, i = [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            break
        if ch == "\\":
            escape = text[i:i + 6] if text[i + 1:i + 2] == "u" else text[i:i + 2]
            if len(escape) < (6 if text[i + 1:i + 2] == "u" else 2):
                break
            body.append(json.loads(f'"{escape}"'))
            i += len(escape)
            continue
        body.append(ch)
        i += 1
    return "".join(body)


def code_of(arguments: str) -> str:
    """The code in a call's JSON arguments."""
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return _partial_code(arguments)
    return str(value.get("code", "")) if isinstance(value, dict) else str(value)


class CodeTool:
    type = "code_interpreter"
    runs_here = True
    retries = True  # code that raised is offered once more: a small model often fixes its own error
    parallel = False

    def __init__(self, runner: CodeRunner) -> None:
        self.runner = runner

    def available(self, spec: dict[str, Any], context: ToolContext) -> bool:
        return True

    def native_name(self, spec: dict[str, Any]) -> str:
        return NAME

    def option(self, spec: dict[str, Any], context: ToolContext) -> ToolOption:
        return ToolOption(key(self.type, NAME), self.type, NAME, SENTENCE, BIAS)

    def describe(self, spec: dict[str, Any]) -> str:
        return DESCRIPTION

    def function_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": NAME, "description": "Run Python code in a Jupyter notebook and see its output.",
            "parameters": ARGUMENTS}}

    def new_call(self, spec: dict[str, Any], call_id: str) -> CodeCall:
        return CodeCall(call_id)

    def parse_call(self, api: dict[str, Any]) -> CodeCall:
        body = api["code_interpreter"]
        return CodeCall(api["id"], body.get("input") or "", list(body.get("outputs") or []))

    def opening(self, spec: dict[str, Any], syntax: CallSyntax) -> str:
        return syntax.opening(NAME) if syntax.native else CODE_OPEN

    def constraint(self, spec: dict[str, Any], request: str, syntax: CallSyntax,
                   fixed: dict[str, Any] | None = None) -> Constraint:
        return JsonSchema(ARGUMENTS) if syntax.native else CodeBlock()

    def writer(self, emit: Emit, syntax: CallSyntax) -> _Fence | _JsonCode:
        return _JsonCode(emit) if syntax.native else _Fence(emit)

    def record(self, call: CodeCall, body: str, syntax: CallSyntax) -> None:
        call.input = code_of(body) if syntax.native else body

    def cut_short(self, body: str, syntax: CallSyntax) -> str:
        if syntax.native:
            return json.dumps({"code": close_python(_partial_code(body))})
        return close_python(body)

    def again(self, spec: dict[str, Any], call: CodeCall, request: str) -> dict[str, Any] | None:
        return None

    def run(self, context: ToolContext, spec: dict[str, Any], call: CodeCall) -> Ran:
        result = self.runner.execute(context.code_session or context.thread_id, call.input,
                                     input_files=context.input_files())
        outputs: list[dict[str, Any]] = []
        if result.logs:
            outputs.append({"type": "logs", "logs": result.logs})
        for i, png in enumerate(result.images):
            file_id = context.save_output(png, f"image_{i}.png" if i else "image.png")
            outputs.append({"type": "image", "image": {"file_id": file_id}})
        links = []
        for path in result.files:
            name = Path(path).name
            if context.cite_file is not None:
                annotation = context.cite_file(Path(path))
            else:
                annotation = {"type": "file_path", "file_path": {
                    "file_id": context.save_output(Path(path).read_bytes(), name)}}
            link = f"sandbox:/mnt/data/{name}"  # where the real API's code interpreter says it wrote a file
            links.append(Link(link, annotation, "each", f"\n\n[{name}]({link})"))
        call.outputs = outputs
        indexed = [dict(o, index=i) for i, o in enumerate(outputs)]
        deltas = [{"code_interpreter": {"outputs": indexed}}] if outputs else []
        return Ran(for_model(result), failed=result.error is not None, deltas=deltas, links=links)

    def transcript(self, call: CodeCall) -> str:
        return code_text(call.input)

    def reply(self, result: str) -> str:
        return output_text(result)

    def written(self, call: CodeCall) -> WrittenCall:
        return WrittenCall(NAME, json.dumps({"code": call.input}))

    def result_of(self, call: CodeCall) -> str:
        return clip("".join(o.get("logs", "") for o in call.outputs))
