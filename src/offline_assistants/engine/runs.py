"""The run lifecycle as the API sees it: create, read, modify, cancel, submit tool outputs, list steps.

Status changes go through the lifecycle (lifecycle.py), which re-reads the status inside the store's write
transaction, so the worker and the HTTP threads never both move the same run. The executor (executor.py) does
the work of a run; this module only admits runs and moves them on the client's behalf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from offline_assistants.engine.control import RunControl
from offline_assistants.engine.events import EventBus, Listener, Subscription
from offline_assistants.engine.lifecycle import Lifecycle
from offline_assistants.engine.threads import Threads
from offline_assistants.errors import Conflict, InvalidRequest, RateLimited
from offline_assistants.ids import new_id, now
from offline_assistants.llm.defaults import API_DEFAULTS, SamplingDefaults
from offline_assistants.schemas.common import ListParams, Page, dump, dump_tools, merged_metadata
from offline_assistants.schemas.runs import (
    FILE_SEARCH_CONTENT,
    TERMINAL_STATUSES,
    Run,
    RunCreate,
    RunStatus,
    RunStep,
    RunUpdate,
    SubmitToolOutputs,
    ThreadAndRunCreate,
    ToolChoiceFunction,
    shown_step,
)
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store import Store


class Runs:
    def __init__(
        self,
        store: Store,
        threads: Threads,
        bus: EventBus,
        lifecycle: Lifecycle,
        control: RunControl,
        enqueue: Callable[[str], None],
        *,
        expiry_s: int = 600,
        defaults: SamplingDefaults = API_DEFAULTS,
        max_queued: int = 64,
    ) -> None:
        self.defaults = defaults
        self.store = store
        self.threads = threads
        self.bus = bus
        self.enqueue = enqueue
        self.expiry_s = expiry_s
        self.max_queued = max_queued
        self.lifecycle = lifecycle
        self.control = control

    # --- create ---
    def _values(self, thread_id: str, req: RunCreate | ThreadAndRunCreate) -> dict[str, Any]:
        assistant = self.store.assistants.get(req.assistant_id)
        instructions = req.instructions if req.instructions is not None else (assistant.instructions or "")
        extra = req.additional_instructions if isinstance(req, RunCreate) else None
        if extra:
            instructions = f"{instructions}\n\n{extra}" if instructions else extra
        tools = dump_tools(req.tools) if req.tools is not None else assistant.tools
        choice = req.tool_choice
        if choice is not None and not isinstance(choice, str):
            if isinstance(choice, ToolChoiceFunction):
                if choice.function.name not in {t["function"]["name"] for t in tools if t["type"] == "function"}:
                    raise InvalidRequest(f"Invalid 'tool_choice': no function named '{choice.function.name}' "
                                         "in tools.", param="tool_choice", code="invalid_value")
            elif choice.type not in {t["type"] for t in tools}:
                raise InvalidRequest(f"Invalid 'tool_choice': tool '{choice.type}' is not enabled for this run.",
                                     param="tool_choice", code="invalid_value")
        created = now()
        return {
            "id": new_id("run"),
            "thread_id": thread_id,
            "assistant_id": assistant.id,
            "created_at": created,
            "status": "queued",
            "model": req.model or assistant.model,
            "instructions": instructions,
            "tools": tools,
            "tool_resources": dump(req.tool_resources) if isinstance(req, ThreadAndRunCreate) else None,
            "metadata": req.metadata or {},
            # Fixed when the run is created, and echoed: the values this run samples with.
            "temperature": _first(req.temperature, assistant.temperature, self.defaults.temperature),
            "top_p": _first(req.top_p, assistant.top_p, self.defaults.top_p),
            "max_prompt_tokens": req.max_prompt_tokens,
            "max_completion_tokens": req.max_completion_tokens,
            "truncation_strategy": dump(req.truncation_strategy) or {"type": "auto", "last_messages": None},
            "tool_choice": dump(choice) or "auto",
            "parallel_tool_calls": True if req.parallel_tool_calls is None else req.parallel_tool_calls,
            "response_format": dump(req.response_format) or assistant.response_format,
            "expires_at": created + self.expiry_s,
        }

    def create(self, thread_id: str, req: RunCreate, listener: Listener | None = None, *,
               include: tuple[str, ...] = ()) -> tuple[Run, Subscription | None]:
        self.store.threads.row(thread_id)
        values = self._values(thread_id, req)
        extra = [self.threads.prepare(thread_id, m) for m in req.additional_messages or []]
        with self._subscribed(thread_id, listener) as sub, self.store.database.write():
            self._check_queue()
            active = self.store.runs.active(thread_id)
            if active is not None:
                raise Conflict(f"Thread {thread_id} already has an active run {active['id']}.")
            for message, tokens in extra:
                self.store.messages.insert(message, tokens)
            self.store.runs.insert(values)
        return self._admit(values["id"], show_content=FILE_SEARCH_CONTENT in include), sub

    def start(self, values: dict[str, Any], messages: list[tuple[dict[str, Any], list[int]]],
              listener: Listener | None = None, *,
              steps: tuple[dict[str, Any], ...] = ()) -> tuple[Run, Subscription | None]:
        """Admit a run another face made whole (the Responses face: no assistant), after its new messages and any
        finished tool steps it starts from (calls a client brought with their outputs), in one transaction."""
        thread_id = values["thread_id"]
        with self._subscribed(thread_id, listener) as sub, self.store.database.write():
            self._check_queue()
            active = self.store.runs.active(thread_id)
            if active is not None:
                raise Conflict(f"Conversation {thread_id} already has an active response.")
            for message, tokens in messages:
                self.store.messages.insert_row(message, tokens)  # a message, or a call or output kept in order
            self.store.runs.insert(values)
            for step in steps:
                self.store.runs.insert_step(step)
        return self._admit(values["id"]), sub

    def create_thread_and_run(
        self, req: ThreadAndRunCreate, listener: Listener | None = None
    ) -> tuple[Run, Subscription | None]:
        # Every rule is checked before anything is written: a refused request leaves no thread or store behind.
        self._check_queue()
        values = self._values("", req)
        if req.tool_resources is not None:
            self.store.files.check_tool_resources(req.tool_resources)
        thread = self.threads.create(req.thread or ThreadCreate())
        if req.tool_resources is not None:
            values["tool_resources"] = dump(self.threads.expand(req.tool_resources))
        values["thread_id"] = thread.id
        with self._subscribed(thread.id, listener) as sub:
            if sub:
                self.bus.publish(thread.id, "thread.created", thread.model_dump(mode="json"))
            self.store.runs.insert(values)
        return self._admit(values["id"]), sub

    def _check_queue(self) -> None:
        # FIFO across threads is the worker's queue; this bounds it. A resumed run (tool outputs) is never refused.
        if self.max_queued and self.store.runs.queued() >= self.max_queued:
            raise RateLimited(f"Too many runs are queued ({self.max_queued}); retry when some have finished.")

    @contextmanager
    def _subscribed(self, thread_id: str, listener: Listener | None) -> Iterator[Subscription | None]:
        """Listen on the thread before the run exists (so no event is missed); stop listening if admission fails."""
        sub = self.bus.subscribe(thread_id, listener) if listener else None
        try:
            yield sub
        except BaseException:
            if sub:
                sub.close()
            raise

    def _admit(self, run_id: str, *, show_content: bool = False) -> Run:
        run = self.lifecycle.announce(run_id, show_content=show_content)
        self.enqueue(run_id)
        return run

    # --- read / modify ---
    def get(self, thread_id: str, run_id: str) -> Run:
        self.store.threads.row(thread_id)
        return self.store.runs.get(thread_id, run_id)

    def list(self, thread_id: str, params: ListParams) -> Page[Run]:
        self.store.threads.row(thread_id)
        return self.store.runs.page(thread_id, params)

    def update(self, thread_id: str, run_id: str, req: RunUpdate) -> Run:
        run = self.get(thread_id, run_id)
        if "metadata" in req.model_fields_set:
            self.store.runs.update(run_id, {"metadata": merged_metadata(run.metadata, req.metadata)})
        return self.store.runs.get(thread_id, run_id)

    def cancel(self, thread_id: str, run_id: str) -> Run:
        self.get(thread_id, run_id)

        waiting: list[bool] = []

        def route(run: Run) -> RunStatus:
            waiting.append(run.status == "requires_action")
            if run.status in TERMINAL_STATUSES or run.status == "cancelling":
                raise InvalidRequest(f"Cannot cancel run with status '{run.status}'.", param=None)
            # A queued run has done nothing yet: it ends at once. An executing one stops at its next token; one
            # waiting for tool outputs is ended by the worker (its open tool step is closed with it).
            return "cancelled" if run.status == "queued" else "cancelling"

        self.control.request_cancel(run_id)
        try:
            moved = self.lifecycle.move(run_id, route)
        finally:
            if self.store.runs.get(None, run_id).status != "cancelling":
                self.control.withdraw_cancel(run_id)
        assert moved is not None
        if waiting[-1]:
            self.enqueue(run_id)  # nothing executes it: the worker finishes the cancellation
        return moved

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, req: SubmitToolOutputs, listener: Listener | None = None, *,
        settings: dict[str, Any] | None = None, messages: Sequence[tuple[dict[str, Any], Sequence[int]]] = (),
    ) -> tuple[Run, Subscription | None]:
        """`settings` and `messages`: what a response that brings the outputs changes of the run (its
        instructions, tools, sampling) and says beside them, written with the submission (engine/responses.py)."""
        run = self.get(thread_id, run_id)
        if run.status != "requires_action" or not run.required_action:
            raise InvalidRequest(
                f"Runs in status \"{run.status}\" do not accept tool outputs.", param=None
            )
        pending = {c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]}
        given: dict[str, str] = {}
        for i, out in enumerate(req.tool_outputs):
            if out.tool_call_id is None:
                raise InvalidRequest(f"Missing required parameter: 'tool_outputs[{i}].tool_call_id'.",
                                     param=f"tool_outputs[{i}].tool_call_id", code="missing_required_parameter")
            if out.tool_call_id not in pending:
                raise InvalidRequest(f"No tool call found with id '{out.tool_call_id}'.",
                                     param=f"tool_outputs[{i}].tool_call_id", code="invalid_value")
            given[out.tool_call_id] = out.output or ""
        missing = pending - set(given)
        if missing:
            raise InvalidRequest(
                f"Expected tool outputs for call_ids {sorted(pending)}, got {sorted(given)}.", param="tool_outputs"
            )
        def route(fresh: Run) -> RunStatus:
            if fresh.status != "requires_action":
                raise InvalidRequest(f"Runs in status \"{fresh.status}\" do not accept tool outputs.")
            return "queued"

        with self._subscribed(thread_id, listener) as sub:
            # The client answered in time, so the rest of the run gets a fresh window: an accepted submission is
            # never expired in the queue before the worker reaches it (a loaded machine made that a race).
            def during() -> None:
                self._record_outputs(run_id, given)
                for message, tokens in messages:
                    self.store.messages.insert(message, [*tokens])

            result = self.lifecycle.move(run_id, route, {"required_action": None, "expires_at": now() + self.expiry_s,
                                                         **(settings or {})}, during=during)
        assert result is not None
        self.enqueue(run_id)
        return result, sub

    def _record_outputs(self, run_id: str, outputs: dict[str, str]) -> None:
        for step in self.store.runs.open_steps(run_id):
            if step.type != "tool_calls":
                continue
            details = step.step_details
            for call in details["tool_calls"]:  # functions, and the Responses API's custom tools
                if call["id"] in outputs and call["type"] in ("function", "custom"):
                    call[call["type"]]["output"] = outputs[call["id"]]
            self.store.runs.update_step(step.id, {"step_details": details})

    # --- steps ---
    def list_steps(self, thread_id: str, run_id: str, params: ListParams,
                   include: tuple[str, ...] = ()) -> Page[RunStep]:
        self.get(thread_id, run_id)
        page = self.store.runs.list_steps(run_id, params)
        return page.model_copy(update={"data": [shown_step(s, include) for s in page.data]})

    def get_step(self, thread_id: str, run_id: str, step_id: str, include: tuple[str, ...] = ()) -> RunStep:
        self.get(thread_id, run_id)
        return shown_step(self.store.runs.get_step(run_id, step_id), include)


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
