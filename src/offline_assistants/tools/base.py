"""The protocol every tool implements, and what running a call returns.

A run's tools are plug-ins: the engine (engine/tooling.py) decides *whether* to call one (engine/decision.py),
then asks the tool what the model is told about it, how a call opens in the assistant's turn and what the
call's body is held to, how the call appears in its run step as the model writes it, and finally runs it. Three
implement it: functions (tools/functions.py), the code interpreter (tools/code_interpreter/tool.py) and file
search (tools/file_search.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from offline_assistants.llm.backend import Constraint

Emit = Callable[[dict[str, Any]], None]  # streams one delta of a call's body (the step's tool_calls[i] minus id)


@dataclass(frozen=True)
class ToolContext:
    """Where a call runs: the thread (its kernel, its files) and the files the run may read."""

    thread_id: str
    input_files: Callable[[], dict[str, Path]]  # filename -> path, read only when a tool needs them
    save_output: Callable[[bytes, str], str]  # stores a file a tool made, returns its file id
    vector_store_ids: Callable[[], list[str]] = list  # the stores file search may read (assistant's, thread's)
    round: int = 0  # which tool call of the run this is: file search numbers its citation markers by it


@dataclass(frozen=True)
class Citation:
    """A source the answer may cite: its marker as the model sees it, and the file it stands for."""

    marker: str  # 【round:index†filename】, the real API's form
    file_id: str


@dataclass
class Ran:
    """A call the server ran: what its step records, what the model reads back, what it made."""

    entry: dict[str, Any]  # the call's body in the step, e.g. {"input": ..., "outputs": [...]}
    result: str  # the text the model reads as the tool's reply
    failed: bool = False
    files: list[tuple[str, str]] = field(default_factory=list)  # (filename, file_id) the call wrote
    citations: list[Citation] = field(default_factory=list)  # sources the answer should cite


class Writer(Protocol):
    """Turns a call's body, as the model writes it, into step deltas."""

    def feed(self, piece: str) -> None: ...

    def finish(self) -> str:
        """Flush what is held back; return the body as the call means it (e.g. code without its fence)."""
        ...


class Tool(Protocol):
    type: str  # the API's tool type: "function", "code_interpreter", "file_search"

    def describe(self, spec: dict[str, Any]) -> str:
        """The line the system prompt gives this tool."""
        ...

    def opening(self, spec: dict[str, Any]) -> str:
        """The text that opens a call in the assistant's turn; the model writes the body after it."""
        ...

    def constraint(self, spec: dict[str, Any], request: str, fixed: dict[str, Any] | None = None) -> Constraint:
        """What the body is held to, given the user's request (and values a parallel call must hold)."""
        ...

    def entry(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The call's step entry before anything is written: {"type": ..., <type>: {...}}."""
        ...

    def writer(self, emit: Emit) -> Writer:
        ...

    def record(self, entry: dict[str, Any], body: str) -> None:
        """Put the written body into the call's entry."""
        ...

    def run(self, context: ToolContext, spec: dict[str, Any], entry: dict[str, Any]) -> Ran | None:
        """Run the call; None when the client runs it (the run waits in requires_action)."""
        ...

    def transcript(self, entry: dict[str, Any]) -> tuple[str, str]:
        """The call and its result as the model reads them back: (what it wrote, the tool's reply)."""
        ...
