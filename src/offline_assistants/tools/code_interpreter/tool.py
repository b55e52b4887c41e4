"""The code interpreter as a tool: the model writes Python into a fenced block, the thread's kernel runs it.

What the kernel printed comes back to the model (clipped: the step keeps it all), images and written files
become files of the run, and a failure is marked so the engine may offer one retry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_assistants.llm.backend import CodeBlock, Constraint
from offline_assistants.llm.toolcalls import CODE_CLOSE, CODE_OPEN
from offline_assistants.tools.base import Emit, Ran, ToolContext
from offline_assistants.tools.code_interpreter.runner import CodeRunner, ExecutionResult

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


class CodeTool:
    type = "code_interpreter"

    def __init__(self, runner: CodeRunner) -> None:
        self.runner = runner

    def describe(self, spec: dict[str, Any]) -> str:
        return DESCRIPTION

    def opening(self, spec: dict[str, Any]) -> str:
        return CODE_OPEN

    def constraint(self, spec: dict[str, Any], request: str, fixed: dict[str, Any] | None = None) -> Constraint:
        return CodeBlock()

    def entry(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {"type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}

    def writer(self, emit: Emit) -> _Fence:
        return _Fence(emit)

    def record(self, entry: dict[str, Any], body: str) -> None:
        entry["code_interpreter"] = {**entry["code_interpreter"], "input": body}

    def run(self, context: ToolContext, spec: dict[str, Any], entry: dict[str, Any]) -> Ran:
        code = entry["code_interpreter"]["input"]
        result = self.runner.execute(context.thread_id, code, input_files=context.input_files())
        outputs: list[dict[str, Any]] = []
        if result.logs:
            outputs.append({"type": "logs", "logs": result.logs})
        for i, png in enumerate(result.images):
            file_id = context.save_output(png, f"image_{i}.png" if i else "image.png")
            outputs.append({"type": "image", "image": {"file_id": file_id}})
        files = [(Path(path).name, context.save_output(Path(path).read_bytes(), Path(path).name))
                 for path in result.files]
        entry["code_interpreter"] = {"input": code, "outputs": outputs}
        return Ran(entry, output_text(for_model(result)), failed=result.error is not None, files=files)

    def transcript(self, entry: dict[str, Any]) -> tuple[str, str]:
        body = entry["code_interpreter"]
        logs = "".join(o.get("logs", "") for o in body["outputs"])
        return code_text(body["input"]), output_text(clip(logs))
