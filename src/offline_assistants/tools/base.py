"""The protocol every tool implements: each per-tool rule lives in the tool, the engine asks by type.

A run's tools are plug-ins (tools/registry.py lists them). The engine (engine/tooling.py) parses `run.tools` once
into `Offer`s, asks each tool whether it is available and how the decision sees it (`option`: its sentence, bias
and words, engine/decision.py), then has the model write the call: in our syntax a tool opens its call and holds
its body (`opening`, `constraint`, `writer`); in a model's own syntax every tool is a function the model calls by
`native_name` with JSON arguments (`arguments`, `from_native`). The call is a typed value (`ToolCall`) that knows
its API form (`to_api`). Then the tool runs it here or leaves it to the client (`runs_here`), says what the model
reads back (`transcript`, `exchange`), and what the answer links to (`Ran.links`).

Three implement it: functions (tools/functions.py), the code interpreter (tools/code_interpreter/tool.py) and
file search (tools/file_search.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from offline_assistants.llm.backend import Constraint, ToolOption
from offline_assistants.llm.toolcalls import CallSyntax, WrittenCall

Emit = Callable[[dict[str, Any]], None]  # streams one delta of a call's body (the step's tool_calls[i] minus id)


@dataclass(frozen=True)
class ToolContext:
    """Where a call runs: the thread (its kernel, its files) and the files the run may read."""

    thread_id: str
    input_files: Callable[[], dict[str, Path]]  # filename -> path, read only when a tool needs them
    save_output: Callable[[bytes, str], str]  # stores a file a tool made, returns its file id
    vector_store_ids: Callable[[], list[str]] = list  # the stores file search may read (assistant's, thread's)
    round: int = 0  # which tool call of the run this is: file search numbers its citation markers by it
    request: str = ""  # the user's latest words
    said: Callable[[], str] | None = None  # what the user said in the thread, newest first (None: not known)
    # Where code runs: the thread's own kernel, or a container's (the Responses face's code_interpreter), whose
    # written files are cited as container files by `cite_file` (their annotation, less its place in the text).
    code_session: str = ""
    cite_file: Callable[[Path], dict[str, Any]] | None = None
    # How many of a request's content words the run's stores hold (file search's evidence for the decision).
    files_hold: Callable[[list[str], str], int] = lambda store_ids, request: 0


@dataclass(frozen=True)
class Link:
    """Something a call made that the answer points at, and the annotation the API puts on it.

    `each`: every such link must appear (a file the code wrote: appended as a link when the answer lacks it);
    `any`: one of the tool's links must appear (file search: the best passage's marker is added to an answer
    that cites none)."""

    text: str  # as it appears in the answer: a sandbox link, a citation marker
    annotation: dict[str, Any]  # {"type": "file_path", "file_path": {...}}: the API's annotation minus positions
    rule: Literal["each", "any"]
    addition: str = ""  # what is appended when the rule wants it and the answer lacks it


@dataclass
class Ran:
    """A call the server ran: what the model reads back, what streams to the client, what the answer links."""

    result: str  # the tool's reply as the model reads it, without any syntax around it
    failed: bool = False
    deltas: list[dict[str, Any]] = field(default_factory=list)  # the call's result as step deltas (code outputs)
    links: list[Link] = field(default_factory=list)


class ToolCall(Protocol):
    """One call in a tool_calls step, as a typed value."""

    id: str
    type: str
    name: str  # what the call is named (a function's name; the tool's native name otherwise)

    def to_api(self) -> dict[str, Any]:
        """The call as the API shows it in step_details.tool_calls."""
        ...


class Writer(Protocol):
    """Turns a call's body, as the model writes it, into step deltas."""

    def feed(self, piece: str) -> None: ...

    def finish(self) -> str:
        """Flush what is held back; return the body as the call means it (e.g. code without its fence)."""
        ...


@dataclass(frozen=True)
class Offer:
    """One tool a run offers: the API's tool object and the plug-in that owns its rules."""

    tool: Tool
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        return key(self.tool.type, self.tool.native_name(self.spec))


def key(type_: str, name: str) -> str:
    """Which offered tool a call or an option is: its type and the name its calls go by."""
    return f"{type_}:{name}"


class Tool(Protocol):
    type: str  # the API's tool type: "function", "code_interpreter", "file_search"
    runs_here: bool  # the server runs its calls; False: the client does (the run waits in requires_action)
    retries: bool  # a failed call may be offered once more in the same run (code that raised)
    parallel: bool  # several calls of its kind may share one step (parallel_tool_calls)

    def available(self, spec: dict[str, Any], context: ToolContext) -> bool:
        """Whether the run can use it now (file search needs a vector store)."""
        ...

    def native_name(self, spec: dict[str, Any]) -> str:
        """The name its calls go by (a function's own; "python" for code, as templates list it)."""
        ...

    def option(self, spec: dict[str, Any], context: ToolContext) -> ToolOption | None:
        """How the decision sees it: its sentence, bias and words (engine/decision.py); None where what the user
        said cannot make a call (a function's required numbers never stated)."""
        ...

    def describe(self, spec: dict[str, Any]) -> str:
        """The line our system prompt gives this tool (models without a call syntax of their own)."""
        ...

    def function_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The tool as an OpenAI function spec, for templates that render tools themselves."""
        ...

    def new_call(self, spec: dict[str, Any], call_id: str) -> ToolCall:
        """The call before anything is written."""
        ...

    def parse_call(self, api: dict[str, Any]) -> ToolCall:
        """A stored call (step_details.tool_calls[i]) back as a typed value."""
        ...

    def opening(self, spec: dict[str, Any], syntax: CallSyntax) -> str:
        """The text that opens a call in the assistant's turn; the model writes the body after it."""
        ...

    def constraint(self, spec: dict[str, Any], request: str, syntax: CallSyntax,
                   fixed: dict[str, Any] | None = None) -> Constraint:
        """What the body is held to, given the user's request (and values a parallel call must hold)."""
        ...

    def writer(self, emit: Emit, syntax: CallSyntax) -> Writer: ...

    def record(self, call: Any, body: str, syntax: CallSyntax) -> None:
        """Put the written body into the call (in a model's own syntax, the body is always JSON arguments)."""
        ...

    def cut_short(self, body: str, syntax: CallSyntax) -> str:
        """A body the model was stopped writing (it repeated itself), closed so it still parses
        (tools/closing.py)."""
        ...

    def again(self, spec: dict[str, Any], call: Any, request: str) -> dict[str, Any] | None:
        """The values of a second, parallel call of the same tool that the request asks for; None: none."""
        ...

    def run(self, context: ToolContext, spec: dict[str, Any], call: Any) -> Ran | None:
        """Run the call; None when the client runs it."""
        ...

    def transcript(self, call: Any) -> str:
        """The call as our syntax writes it in the assistant's turn."""
        ...

    def reply(self, result: str) -> str:
        """A tool's reply as our syntax shows it to the model."""
        ...

    def written(self, call: Any) -> WrittenCall:
        """The call as a function call, for a model's own template."""
        ...

    def result_of(self, call: Any) -> str:
        """The reply the model read, recovered from a stored call (a run resumed after submit_tool_outputs)."""
        ...


__all__ = ["Emit", "Link", "Offer", "Ran", "Tool", "ToolCall", "ToolContext", "ToolOption", "Writer", "key"]
