"""One run, start to end: build the prompt, call the model, stream the message, end the run.

The executor runs on the engine's worker threads (engine/worker.py), one run per thread at a time; runs of one
conversation never overlap (admission keeps one active run per thread). Every state change is written to the
store first and then published on the event bus, so a poller and a streaming client see the same run. Status
changes, steps and their events go through the lifecycle (lifecycle.py); what tells a run to stop through the
run control (control.py); model calls through `ModelCalls` (model_calls.py); tool rounds through the tool
calling (tooling.py), whose outcome decides the next step of the loop.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from offline_assistants.engine.answers import Leaks
from offline_assistants.engine.control import RunControl
from offline_assistants.engine.events import EventBus, EventName
from offline_assistants.engine.lifecycle import Lifecycle
from offline_assistants.engine.loops import LoopGuard
from offline_assistants.engine.model_calls import Generated, ModelCalls
from offline_assistants.engine.tooling import Answer, AwaitOutputs, ToolCalling, ToolRan
from offline_assistants.engine.turn import DEFAULT_SYSTEM, Budget, Cancelled, Incomplete, Turn
from offline_assistants.ids import new_id, now
from offline_assistants.llm.backend import AnyJson, Constraint, JsonSchema, ModelBackend, ModelError, describe_error
from offline_assistants.schemas.messages import text_of
from offline_assistants.schemas.runs import Run, RunStatus
from offline_assistants.store import Store
from offline_assistants.store.window import choose as window_of

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.5
_WORD = re.compile(r"\w")  # an answer says something only once it holds a word ...
_FENCE = re.compile(r"^\s*```\w*")  # ... besides the language of a fence it opened

__all__ = ["DEFAULT_SYSTEM", "Budget", "Cancelled", "Executor", "Incomplete", "Turn"]


class Executor:
    def __init__(self, store: Store, lifecycle: Lifecycle, control: RunControl, bus: EventBus,
                 backend: ModelBackend, model_calls: ModelCalls, tooling: ToolCalling | None, *,
                 max_rounds: int = 8) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.control = control
        self.bus = bus  # for the message events; run and step events are the lifecycle's
        self.backend = backend
        self.model_calls = model_calls
        self.tooling = tooling
        self.max_rounds = max_rounds

    # --- entry ---
    def execute(self, run_id: str) -> None:
        ts = now()

        def start(run: Run) -> RunStatus | None:
            if run.status == "cancelling":
                return "cancelled"  # cancelled while it waited for tool outputs
            if run.status != "queued":
                return None  # cancelled or expired while it waited
            return "expired" if run.expires_at is not None and run.expires_at <= ts else "in_progress"

        started = self.lifecycle.move(run_id, start)
        if started is None or started.status != "in_progress":
            self.control.finished(run_id)  # a cancel request that ended it while it waited is spent
            return
        self.control.executing(run_id, started.expires_at)
        try:
            self._run(run_id)
        except Cancelled:
            self.lifecycle.settle(run_id, "expired" if self.control.past_deadline(run_id) else "cancelled")
        except Incomplete as exc:
            # A tool call cut short by the budget never ran: its step ends cancelled (lifecycle.STEP_ENDINGS).
            self.lifecycle.settle(run_id, "incomplete", {"incomplete_details": {"reason": exc.reason}})
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the run must end and unlock its thread
            log.exception("run %s failed", run_id)
            # A failure may name its API code (the scripted model's `fail`); anything else is the server's fault.
            code = exc.code if isinstance(exc, ModelError) else None
            self.lifecycle.settle(run_id, "failed", {"last_error": {"code": code or "server_error",
                                                                    "message": describe_error(exc)}})
        finally:
            self.control.finished(run_id)

    # --- the loop ---
    def _run(self, run_id: str) -> None:
        record = self.store.runs.record(run_id)
        run = record.run
        turn = Turn(run=run, tool_resources=record.tool_resources, system=[], prefix=self.backend.generation_prefix(),
                    response_format=_format_constraint(run), max_builtin_calls=record.max_tool_calls,
                    sampling=record.sampling or {})
        budget = Budget(self.backend.n_ctx, run.max_prompt_tokens, run.max_completion_tokens,
                        record.prompt_tokens, record.completion_tokens)
        if self.tooling is not None:
            self.tooling.prepare(turn)  # may set the system prompt (tools are described there)
        if not turn.system:
            turn.system = self.backend.encode_system(run.instructions or DEFAULT_SYSTEM)
        for _round in range(self.max_rounds):
            prompt = self.prompt(turn, budget)
            outcome = self.tooling.round(turn, prompt, budget) if self.tooling is not None else Answer()
            # Decided here, not by re-reading the run: the client may already have answered a requires_action.
            if isinstance(outcome, AwaitOutputs):
                return
            if isinstance(outcome, ToolRan):
                continue
            self.write_message(turn, prompt, budget)
            self.lifecycle.settle(run_id, "completed")
            return
        # Out of tool rounds: answer in text now rather than loop forever.
        self.write_message(turn, self.prompt(turn, budget), budget)
        self.lifecycle.settle(run_id, "completed")

    def prompt(self, turn: Turn, budget: Budget) -> list[int]:
        """One window for everything the model sees: system prompt, the thread's messages, this run's tool calls
        and results, the assistant's opening. What does not fit is cut, oldest first, thread and tools alike."""
        cap, by_max_prompt = budget.prompt_cap()
        fixed = len(turn.system) + len(turn.prefix)
        room = cap - fixed
        if room <= 0:
            if by_max_prompt:
                raise Incomplete("max_prompt_tokens")
            raise ModelError(f"the instructions ({fixed} tokens) do not fit the model's "
                             f"context of {self.backend.n_ctx} tokens")
        # The run's own tool exchanges are its newest context, but the thread keeps at least half the room
        # (or all it needs, if less): the request they answer must stay in view.
        exchanges = list(turn.exchanges)
        total = sum(len(e.tokens) for e in exchanges)
        if exchanges and total > room // 2:  # the thread's size is asked only when the exchanges could crowd it
            history = min(room // 2, self.store.messages.total_tokens(turn.thread_id))
            while exchanges and total > room - history:
                total -= len(exchanges.pop(0).tokens)
        extras = [t for e in exchanges for t in e.tokens]
        thread = self.store.threads.row(turn.thread_id)
        window = window_of(
            self.store.database,
            turn.thread_id,
            room - len(extras),
            strategy=turn.run.truncation_strategy,
            cut_seq=thread["cut_seq"],
            encode=self.backend.encode_message,
        )
        if window.cut_seq != thread["cut_seq"]:
            self.store.threads.set_cut(turn.thread_id, window.cut_seq)
        prompt = turn.system + window.tokens + extras + turn.prefix
        turn.window = {"first_message_id": window.first_id, "last_message_id": window.last_id,
                       "messages": window.messages, "tool_exchanges": len(exchanges),
                       "tool_exchanges_cut": len(turn.exchanges) - len(exchanges), "prompt_tokens": len(prompt)}
        return prompt

    # --- writing an assistant message ---
    def write_message(self, turn: Turn, prompt: list[int], budget: Budget) -> str:
        """Generate the assistant's message."""
        run = turn.run
        run_id, thread_id = run.id, run.thread_id
        self.model_calls.max_new(prompt, budget)  # an exhausted budget ends the run before a message is opened
        message_id, step_id = new_id("message"), new_id("step")
        created = now()
        # The message first: the step that names it is announced at once (a client may fetch the message).
        self.store.messages.insert({
            "id": message_id, "thread_id": thread_id, "created_at": created, "role": "assistant",
            "content": [], "attachments": [], "metadata": {}, "status": "in_progress",
            "assistant_id": run.assistant_id, "run_id": run_id,
        }, None)
        self.lifecycle.open_step({
            "id": step_id, "run_id": run_id, "thread_id": thread_id, "assistant_id": run.assistant_id,
            "created_at": created, "type": "message_creation", "status": "in_progress",
            "step_details": {"type": "message_creation", "message_creation": {"message_id": message_id}},
            "metadata": {},
        })
        self._emit_message(thread_id, message_id, "thread.message.created")
        self._emit_message(thread_id, message_id, "thread.message.in_progress")

        last_flush = time.monotonic()
        guard = LoopGuard() if turn.response_format is None else None  # a constraint already bounds the output
        # A run that may call tools never shows a call (or a tool's reply) written as text, and no answer shows a
        # turn's end written as text: the answer ends there.
        syntax = self.tooling.syntax if self.tooling is not None else None
        leaks = Leaks(syntax, tools=bool(turn.tools), stops=tuple(turn.sampling.get("stop") or ()))
        written = ""

        def piece(addition: str) -> None:
            nonlocal written, last_flush
            addition = leaks.feed(addition)
            if not addition:
                return
            written += addition
            self._delta(thread_id, message_id, addition)
            if time.monotonic() - last_flush > FLUSH_EVERY_S:
                self.store.messages.update(thread_id, message_id, {"content": _text_content(written)})
                last_flush = time.monotonic()

        def halt() -> bool:
            return (guard is not None and guard.tripped is not None) or leaks.found

        def answer(prompt: list[int]) -> Generated:
            try:
                return self.model_calls.generate(
                    turn, prompt, budget, constraint=turn.response_format, answer=turn.answer_bias(),
                    on_piece=piece, halt=halt, on_token=guard.feed if guard is not None else None)
            except BaseException:
                self._close_message(turn, message_id, step_id, written, "incomplete", "run_failed", None)
                raise

        out = answer(prompt)
        piece(leaks.finish())
        if turn.tools and leaks.found and not _WORD.search(_FENCE.sub("", written)) and out.ending == "stop":
            # Nothing but a call where the decision said answer (or the brace or fence it opened with, as
            # Qwen2.5-Coder-1.5B writes them): ask again with the tools left out of the system prompt (the model
            # sees its calls and their outputs still), then fall back on the tool's last output, which is what
            # such an answer would have had to state.
            log.info("run %s: the answer was a call written as text; asked again without the tools", run_id)
            written = ""
            leaks = Leaks(syntax, stops=tuple(turn.sampling.get("stop") or ()))
            guard = LoopGuard() if turn.response_format is None else None
            plain = self.backend.encode_system(run.instructions or DEFAULT_SYSTEM)
            again = answer(plain + prompt[len(turn.system):])
            out = Generated(out.text + again.text, out.tokens + again.tokens, again.ending,
                            out.read + again.read, out.written + again.written)
            piece(leaks.finish())
            if not written.strip() and turn.exchanges:
                shown = turn.exchanges[-1].result.strip()  # the tool's own words: shown as they are
                written += shown
                self._delta(thread_id, message_id, shown)
        text = written
        if guard is not None and guard.tripped and out.ending == "stop":
            log.info("run %s: %s; ended as a natural stop", run_id, guard.tripped)
        usage = _usage(out.read, out.written)
        if out.ending == "cancelled":
            self._close_message(turn, message_id, step_id, text, "incomplete", "run_cancelled", usage)
            raise Cancelled()
        # Files the run's code wrote are linked even when the reply was cut short: they exist either way.
        text, annotations = self._link(turn, thread_id, message_id, text)
        if out.ending in ("cut", "budget"):
            # Cut off: by the run's budget (the run ends incomplete) or by the window / the server's cap.
            self._close_message(turn, message_id, step_id, text, "incomplete", "max_tokens", usage, annotations,
                                logprobs=_shown(out.logprobs, written))
            if out.ending == "budget":
                raise Incomplete("max_completion_tokens")
            return text
        self._close_message(turn, message_id, step_id, text, "completed", None, usage, annotations,
                            logprobs=_shown(out.logprobs, written))
        return text

    def _flush(self, thread_id: str, message_id: str, piece: str, written: str) -> str:
        if piece:
            self._delta(thread_id, message_id, piece)
        return piece

    def _link(self, turn: Turn, thread_id: str, message_id: str, text: str) -> tuple[str, list[dict[str, Any]]]:
        """Annotations on what the run's tools made (tools/base.py `Link`): `file_path` on the sandbox links of
        files the code wrote, `file_citation` on file search's markers, as in the real API. A link the answer
        must hold and lacks is appended, and streamed with its annotation."""
        if not turn.links:
            return text, []
        added = ""
        cited = [link for link in turn.links if link.rule == "any"]
        if cited and not any(link.text in text for link in cited):
            added += ("" if not text or text.endswith((" ", "\n")) else " ") + cited[0].addition
        for link in turn.links:
            if link.rule == "each" and link.text not in text + added:
                added += link.addition
        text += added
        annotations: list[dict[str, Any]] = []
        for link in {link.text: link for link in turn.links}.values():
            start = text.find(link.text)
            while start >= 0:
                annotations.append({**link.annotation, "text": link.text, "start_index": start,
                                    "end_index": start + len(link.text)})
                start = text.find(link.text, start + len(link.text))
        annotations.sort(key=lambda a: a["start_index"])
        if added:
            fresh = [a for a in annotations if a["start_index"] >= len(text) - len(added)]
            self._delta(thread_id, message_id, added, fresh)
        return text, annotations

    def _delta(self, thread_id: str, message_id: str, piece: str, annotations: list[dict[str, Any]] | None = None
               ) -> None:
        self.bus.publish(thread_id, "thread.message.delta", {
            "id": message_id, "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {
                "value": piece, "annotations": [dict(a, index=i) for i, a in enumerate(annotations or [])]}}]},
        })

    def _emit_message(self, thread_id: str, message_id: str, event: EventName) -> None:
        message = self.store.messages.get(thread_id, message_id)
        self.bus.publish(thread_id, event, message.model_dump(mode="json"))

    def _close_message(
        self, turn: Turn, message_id: str, step_id: str, text: str, status: str, reason: str | None,
        usage: dict[str, int] | None, annotations: list[dict[str, Any]] | None = None,
        logprobs: list[dict[str, Any]] | None = None,
    ) -> None:
        thread_id, run_id = turn.thread_id, turn.run_id
        ts = now()
        content = _text_content(text, annotations)
        values: dict[str, Any] = {"content": content, "status": status}
        if logprobs:
            values["logprobs"] = logprobs
        if status == "completed":
            values["completed_at"] = ts
        else:
            values["incomplete_at"] = ts
            values["incomplete_details"] = {"reason": reason}
        self.store.messages.update(thread_id, message_id, values)
        tokens = self.backend.encode_message("assistant", text_of(content))
        self.store.messages.set_tokens(thread_id, message_id, tokens)
        self._emit_message(thread_id, message_id,
                           "thread.message.completed" if status == "completed" else "thread.message.incomplete")
        if reason == "run_failed":
            return  # the step stays open: the run's ending (lifecycle.py) fails it with the run's last_error
        self.lifecycle.close_step(run_id, step_id, "cancelled" if reason == "run_cancelled" else "completed",
                                       {"usage": usage})


def _format_constraint(run: Run) -> Constraint | None:
    """response_format as a constraint: JSON mode and Structured Outputs hold by construction."""
    fmt = run.response_format
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return AnyJson()
    if fmt.get("type") == "json_schema":
        return JsonSchema((fmt.get("json_schema") or {}).get("schema"))
    return None


def _text_content(text: str, annotations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"value": text, "annotations": annotations or []}}]


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _shown(logprobs: list[dict[str, Any]], shown: str) -> list[dict[str, Any]]:
    """The log-probabilities of the tokens that make up what was shown (an answer cut where a call or a stop
    sequence began keeps the tokens before it)."""
    kept, size, limit = [], 0, len(shown.encode())
    for token in logprobs:
        size += len(token["bytes"])
        if size > limit:
            break
        kept.append(token)
    return kept
