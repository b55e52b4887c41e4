"""One run, start to end: build the prompt, call the model, stream the message, settle the run's status.

The executor runs on the engine's single worker thread. Every state change is written to the store first and
then published on the event bus, so a poller and a streaming client see the same run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from offline_assistants.engine import truncation
from offline_assistants.engine.loops import LoopGuard
from offline_assistants.engine.runs import Runs
from offline_assistants.ids import new_id, now
from offline_assistants.llm.backend import (
    AnyJson,
    Constraint,
    Finish,
    JsonSchema,
    ModelBackend,
    ModelError,
    Sampling,
    describe_error,
)
from offline_assistants.llm.defaults import API_DEFAULTS, SamplingDefaults
from offline_assistants.schemas.messages import text_of
from offline_assistants.schemas.runs import Run, RunStatus
from offline_assistants.store import Store
from offline_assistants.store.db import loads

log = logging.getLogger(__name__)

DEFAULT_SYSTEM = "You are a helpful assistant."
FLUSH_EVERY_S = 0.5


class Incomplete(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancelled(Exception):
    pass


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
class Turn:
    """The state of one run while it executes: the prompt pieces that do not change between its model calls."""

    run: dict[str, Any]
    system: list[int]
    prefix: list[int]
    extras: list[int] = field(default_factory=list)  # in-run tool calls and results, after the history
    tools: list[dict[str, Any]] = field(default_factory=list)  # the tools this run may call (engine/tooling.py)
    tool_choice: Any = "auto"
    tool_rounds: int = 0
    used_tools: set[str] = field(default_factory=set)  # tools already called in this run
    last_call_failed: bool = False
    request: str | None = None  # the user's latest words, read once when a tool decision needs them
    output_files: list[tuple[str, str]] = field(default_factory=list)  # (filename, file_id) made by tools


class Executor:
    def __init__(self, store: Store, runs: Runs, backend: ModelBackend, *, max_rounds: int = 8,
                 max_output_tokens: int | None = None, defaults: SamplingDefaults = API_DEFAULTS) -> None:
        self.store = store
        self.defaults = defaults
        self.max_output_tokens = max_output_tokens
        self.runs = runs
        self.backend = backend
        self.max_rounds = max_rounds
        self._deadline: int | None = None  # expires_at of the run executing now
        self.extensions: list[Any] = []  # tool handling plugs in here (engine/tooling.py)

    # --- entry ---
    def execute(self, run_id: str) -> None:
        lifecycle = self.runs.lifecycle
        ts = now()

        def start(run: Run) -> RunStatus | None:
            if run.status == "cancelling":
                return "cancelled"  # cancelled while it waited for tool outputs
            if run.status != "queued":
                return None  # cancelled or expired while it waited
            return "expired" if run.expires_at is not None and run.expires_at <= ts else "in_progress"

        started = lifecycle.move(run_id, start)
        if started is None or started.status != "in_progress":
            return
        self._deadline = started.expires_at
        try:
            self._run(run_id)
        except Cancelled:
            lifecycle.settle(run_id, "expired" if self._past_deadline() else "cancelled")
        except Incomplete as exc:
            # A tool call cut short by the budget never ran: its step ends cancelled (lifecycle.STEP_ENDINGS).
            lifecycle.settle(run_id, "incomplete", {"incomplete_details": {"reason": exc.reason}})
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the run must end and unlock its thread
            log.exception("run %s failed", run_id)
            lifecycle.settle(run_id, "failed", {"last_error": {"code": "server_error", "message": describe_error(exc)}})
        finally:
            self._deadline = None
            self.runs.cancel_requested.discard(run_id)

    def _past_deadline(self) -> bool:
        # As OpenAI documents: a run that goes beyond expires_at is expired, its generation stopped.
        return self._deadline is not None and now() >= self._deadline

    # --- the loop ---
    def _run(self, run_id: str) -> None:
        row = self.store.runs.row(None, run_id)
        turn = Turn(run=row, system=[], prefix=self.backend.generation_prefix())
        budget = Budget(self.backend.n_ctx, row["max_prompt_tokens"], row["max_completion_tokens"],
                        row["prompt_tokens"], row["completion_tokens"])
        for ext in self.extensions:
            ext.prepare(turn)  # may set the system prompt (tools are described there)
        if not turn.system:
            turn.system = self.backend.encode_system(row["instructions"] or DEFAULT_SYSTEM)
        for _round in range(self.max_rounds):
            prompt = self._prompt(turn, budget)
            outcome: Any = None
            for ext in self.extensions:
                outcome = ext.handle(self, turn, prompt, budget)
                if outcome:
                    break
            # Decided here, not by re-reading the run: the client may already have answered a requires_action.
            if outcome == "wait":
                return
            if outcome == "next":
                continue
            self.write_message(turn, prompt, budget, outcome if isinstance(outcome, tuple) else ("", []))
            self.runs.lifecycle.settle(run_id, "completed")
            return
        # Out of tool rounds: answer in text now rather than loop forever.
        self.write_message(turn, self._prompt(turn, budget), budget)
        self.runs.lifecycle.settle(run_id, "completed")

    def _prompt(self, turn: Turn, budget: Budget) -> list[int]:
        cap, by_max_prompt = budget.prompt_cap()
        fixed = len(turn.system) + len(turn.extras) + len(turn.prefix)
        room = cap - fixed
        if room <= 0:
            if by_max_prompt:
                raise Incomplete("max_prompt_tokens")
            raise ModelError(f"the instructions and tool results ({fixed} tokens) do not fit the model's "
                             f"context of {self.backend.n_ctx} tokens")
        thread = self.store.threads.row(turn.run["thread_id"])
        window = truncation.choose(
            self.store.database,
            turn.run["thread_id"],
            room,
            strategy=self._strategy(turn.run),
            cut_seq=thread["cut_seq"],
            encode=self.backend.encode_message,  # type: ignore[arg-type]
        )
        if window.cut_seq != thread["cut_seq"]:
            self.store.threads.set_cut(turn.run["thread_id"], window.cut_seq)
        return turn.system + window.tokens + turn.extras + turn.prefix

    @staticmethod
    def _strategy(run: dict[str, Any]) -> dict[str, Any] | None:
        return loads(run["truncation_strategy"])  # type: ignore[no-any-return]

    def sampling(self, turn: Turn, max_tokens: int, constraint: Constraint | None = None) -> Sampling:
        run = turn.run
        return Sampling(
            temperature=self.defaults.temperature if run["temperature"] is None else run["temperature"],
            top_p=self.defaults.top_p if run["top_p"] is None else run["top_p"],
            repeat_penalty=self.defaults.repeat_penalty,
            max_tokens=max_tokens,
            constraint=constraint if constraint is not None else self._format_constraint(run),
        )

    @staticmethod
    def _format_constraint(run: dict[str, Any]) -> Constraint | None:
        """response_format as a constraint: JSON mode and Structured Outputs hold by construction."""
        fmt = loads(run["response_format"])
        if not isinstance(fmt, dict):
            return None
        if fmt.get("type") == "json_object":
            return AnyJson()
        if fmt.get("type") == "json_schema":
            return JsonSchema((fmt.get("json_schema") or {}).get("schema"))
        return None

    def max_new(self, prompt: list[int], budget: Budget) -> tuple[int, bool]:
        """How many tokens the next call may generate, and whether max_completion_tokens is the limit."""
        room = self.backend.n_ctx - len(prompt)
        left = budget.completion_left()
        if left is None and self.max_output_tokens:
            # No budget from the client: the server's default keeps a reply from filling the whole window.
            room = min(room, self.max_output_tokens)
        if left is not None and left <= 0:
            raise Incomplete("max_completion_tokens")
        if left is not None and left <= room:
            return left, True
        return room, False

    def cancelled(self, run_id: str) -> bool:
        """Whether the run must stop now: the client cancelled it, or it ran past its expires_at."""
        return run_id in self.runs.cancel_requested or self._past_deadline()

    # --- writing an assistant message ---
    def write_message(self, turn: Turn, prompt: list[int], budget: Budget, lead: tuple[str, list[int]] = ("", [])
                      ) -> str:
        """Generate the assistant's message. `lead` is text (and its tokens) the model already wrote while the
        tool layer peeked at whether it was starting a call: it opens the message and the prompt continues it."""
        run = turn.run
        run_id, thread_id = run["id"], run["thread_id"]
        limit, by_budget = self.max_new(prompt, budget)
        message_id, step_id = new_id("message"), new_id("step")
        created = now()
        self.store.runs.insert_step({
            "id": step_id, "run_id": run_id, "thread_id": thread_id, "assistant_id": run["assistant_id"],
            "created_at": created, "type": "message_creation", "status": "in_progress",
            "step_details": {"type": "message_creation", "message_creation": {"message_id": message_id}},
            "metadata": {},
        })
        self.store.messages.insert({
            "id": message_id, "thread_id": thread_id, "created_at": created, "role": "assistant",
            "content": [], "attachments": [], "metadata": {}, "status": "in_progress",
            "assistant_id": run["assistant_id"], "run_id": run_id,
        }, None)
        self.runs.emit_step(thread_id, run_id, step_id, "thread.run.step.created")
        self.runs.emit_step(thread_id, run_id, step_id, "thread.run.step.in_progress")
        self._emit_message(thread_id, message_id, "thread.message.created")
        self._emit_message(thread_id, message_id, "thread.message.in_progress")

        text, lead_tokens = lead
        if text:
            self._delta(thread_id, message_id, text)
        prompt = prompt + lead_tokens
        finish: Finish | None = None
        last_flush = time.monotonic()
        sampling = self.sampling(turn, limit)
        guard = LoopGuard() if sampling.constraint is None else None  # a constraint already bounds what can come

        def stop() -> bool:  # the backend checks this after every token
            return self.cancelled(run_id) or (guard is not None and guard.tripped is not None)

        try:
            for item in self.backend.generate(prompt, sampling, cache_key=thread_id, cancelled=stop):
                if isinstance(item, Finish):
                    finish = item
                    break
                if item.text:
                    text += item.text
                    self._delta(thread_id, message_id, item.text)
                if guard is not None:
                    guard.feed(item.token, item.text)
                if time.monotonic() - last_flush > FLUSH_EVERY_S:
                    self.store.messages.update(thread_id, message_id, {"content": _text_content(text)})
                    last_flush = time.monotonic()
        except BaseException:
            self._close_message(turn, message_id, step_id, text, "incomplete", "run_failed", None)
            raise
        assert finish is not None
        if finish.reason == "cancelled" and guard is not None and guard.tripped and not self.cancelled(run_id):
            log.info("run %s: %s; ended as a natural stop", run_id, guard.tripped)
            finish = dataclasses.replace(finish, reason="stop")
        # The lead's tokens were generated, not read: count them as completion, not prompt.
        read, written = len(prompt) - len(lead_tokens), finish.completion_tokens + len(lead_tokens)
        budget.used_prompt += read
        budget.used_completion += written
        self.store.runs.add_usage(run_id, read, written)
        usage = _usage(read, written)
        if finish.reason == "cancelled":
            self._close_message(turn, message_id, step_id, text, "incomplete", "run_cancelled", usage)
            raise Cancelled()
        # Files the run's code wrote are linked even when the reply was cut short: they exist either way.
        text, annotations = self._link_files(turn, thread_id, message_id, text)
        if finish.reason == "length":
            # Cut off: by the run's budget (the run ends incomplete) or by the window / the server's cap.
            self._close_message(turn, message_id, step_id, text, "incomplete", "max_tokens", usage, annotations)
            if by_budget:
                raise Incomplete("max_completion_tokens")
            return text
        self._close_message(turn, message_id, step_id, text, "completed", None, usage, annotations)
        return text

    def _link_files(self, turn: Turn, thread_id: str, message_id: str, text: str) -> tuple[str, list[dict[str, Any]]]:
        """Files the run's code wrote come back as `file_path` annotations on sandbox links, as in the real API."""
        annotations: list[dict[str, Any]] = []
        for filename, file_id in turn.output_files:
            link = f"sandbox:/mnt/data/{filename}"
            if link not in text:
                addition = f"\n\n[{filename}]({link})"
                text += addition
                self._delta(thread_id, message_id, addition)
            start = text.index(link)
            annotations.append({"type": "file_path", "text": link, "start_index": start,
                                "end_index": start + len(link), "file_path": {"file_id": file_id}})
        return text, annotations

    def _delta(self, thread_id: str, message_id: str, piece: str) -> None:
        self.runs.bus.publish(thread_id, "thread.message.delta", {
            "id": message_id, "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}]},
        })

    def _emit_message(self, thread_id: str, message_id: str, event: Any) -> None:
        message = self.store.messages.get(thread_id, message_id)
        self.runs.bus.publish(thread_id, event, message.model_dump(mode="json"))

    def _close_message(
        self, turn: Turn, message_id: str, step_id: str, text: str, status: str, reason: str | None,
        usage: dict[str, int] | None, annotations: list[dict[str, Any]] | None = None,
    ) -> None:
        run = turn.run
        thread_id, run_id = run["thread_id"], run["id"]
        ts = now()
        content = _text_content(text, annotations)
        values: dict[str, Any] = {"content": content, "status": status}
        if status == "completed":
            values["completed_at"] = ts
        else:
            values["incomplete_at"] = ts
            values["incomplete_details"] = {"reason": reason}
        self.store.messages.update(thread_id, message_id, values)
        self.store.messages.set_tokens(thread_id, message_id, self.backend.encode_message("assistant", text_of(content)))
        self._emit_message(thread_id, message_id,
                           "thread.message.completed" if status == "completed" else "thread.message.incomplete")
        if reason == "run_failed":
            return  # the step stays open: the run's ending (lifecycle.py) fails it with the run's last_error
        self.runs.lifecycle.close_step(run_id, step_id, "cancelled" if reason == "run_cancelled" else "completed",
                                       {"usage": usage})

def _text_content(text: str, annotations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": text, "annotations": annotations or []}}]


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
