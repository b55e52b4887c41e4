"""One run while it executes: its token budgets, the prompt pieces that persist between its model calls, and
the two ways a run's work stops short (Cancelled, Incomplete)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from offline_assistants.llm.backend import AnswerBias, Constraint
from offline_assistants.schemas.runs import Run
from offline_assistants.tools.base import Link, Offer

DEFAULT_SYSTEM = "You are a helpful assistant."


class Incomplete(Exception):
    """A budget ran out: the run ends `incomplete` with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancelled(Exception):
    """The client cancelled the run, or it ran past expires_at: the model call stopped between tokens."""


@dataclass
class Budget:
    """What is left of the run's token budgets, across all of its model calls."""

    n_ctx: int
    max_prompt: int | None
    max_completion: int | None
    used_prompt: int = 0
    used_completion: int = 0

    def completion_left(self) -> int | None:
        return None if self.max_completion is None else self.max_completion - self.used_completion

    def prompt_cap(self) -> tuple[int, bool]:
        """Most prompt tokens the next call may use, and whether max_prompt_tokens is what limits it."""
        left = self.completion_left()
        reserve = self.n_ctx // 4 if left is None else min(left, self.n_ctx // 4)
        cap = self.n_ctx - max(reserve, 1)
        if self.max_prompt is not None and self.max_prompt - self.used_prompt <= cap:
            return self.max_prompt - self.used_prompt, True
        return cap, False


@dataclass
class Exchange:
    """One tool call and its result as the model reads them back, encoded once."""

    tokens: list[int]
    result: str  # the tool's reply as the model reads it: the answer quotes its figures (Turn.answer_bias)


@dataclass
class Turn:
    """The state of one run while it executes: the prompt pieces that do not change between its model calls."""

    run: Run
    tool_resources: dict[str, Any] | None
    system: list[int]
    prefix: list[int]
    # In-run tool calls and their results, oldest first, after the thread's messages (fitted to the window with
    # them: the oldest are cut first when they no longer fit, see Executor.prompt).
    exchanges: list[Exchange] = field(default_factory=list)
    response_format: Constraint | None = None  # what the run's messages are held to (JSON mode, a schema)
    tools: list[Offer] = field(default_factory=list)  # the tools this run may call (engine/tooling.py)
    tool_choice: Any = "auto"
    tool_rounds: int = 0
    call_openings: tuple[str, ...] = ()  # how the run's tool calls open in the transcript: no answer opens so
    used_tools: set[str] = field(default_factory=set)  # tools already called in this run
    max_builtin_calls: int | None = None  # a response's max_tool_calls: calls of the tools that run here
    sampling: dict[str, Any] = field(default_factory=dict)  # a chat completion's stop, seed, penalties, logit_bias
    builtin_calls: int = 0
    last_call_failed: bool = False
    request: str | None = None  # the user's latest words, read once when a tool decision needs them
    links: list[Link] = field(default_factory=list)  # what the run's tools made that the answer points at
    vector_store_ids: list[str] | None = None  # the live stores file search reads, found once per run
    started: float = field(default_factory=time.monotonic)  # when this execution began, for time to first token
    window: dict[str, Any] | None = None  # what the latest prompt kept (schemas/runs.py RunWindow's fields)

    def answer_bias(self) -> AnswerBias | None:
        """What the answer is held to after this run's tool calls: their results' figures, and no call as text."""
        if not self.exchanges and not self.call_openings:
            return None
        # Under response_format the grammar already holds the answer to JSON, which opens as a call's body does.
        openings = self.call_openings if self.response_format is None else ()
        return AnswerBias(copy_from=tuple(e.result for e in self.exchanges), never_open=openings)

    @property
    def cache_key(self) -> str:
        """Which of the model's kept conversation states this run continues: its thread's, or one a chat
        completion names (its own thread is new each time, but the conversation it carries is not)."""
        return str(self.sampling.get("cache_key") or self.thread_id)

    @property
    def thread_id(self) -> str:
        return self.run.thread_id

    @property
    def run_id(self) -> str:
        return self.run.id
