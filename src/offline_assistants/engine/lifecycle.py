"""The run state machine's moves, and every run and step event, in one place.

Which status may follow which is `TRANSITIONS` (schemas/runs.py, beside `RunStatus`: the store reads the status
sets derived from it). Every status change goes through `Lifecycle.move`: inside one write transaction it
re-reads the run, checks the move against TRANSITIONS (an illegal one raises IllegalTransition, a bug, not a
client error), stamps the matching `*_at` field, and on an ending closes the run's open steps, clears
`expires_at` and `required_action` and ends any message still being written; after the commit it publishes the
step events, then the run's.

Callers that race (the client's cancel or submit_tool_outputs, the worker's expiry sweep and its own endings)
pass `to` as a function of the freshly read run: it names the status to move to, or None to leave the run as it
is, so of two racers exactly one moves it. `settle` is the worker's ending: a run the client asked to cancel
meanwhile (`cancelling`) ends `cancelled` instead. Steps open through `open_step` and end through `close_step`,
their calls stream through `step_delta`; `recover` ends, at start-up, the runs a previous process left active.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_assistants.engine.events import EventBus, EventName
from offline_assistants.ids import now
from offline_assistants.schemas.runs import (
    FILE_SEARCH_CONTENT,
    RECOVERY,
    TERMINAL_STATUSES,
    TRANSITIONS,
    Run,
    RunStatus,
    RunStep,
    StepStatus,
    shown_step,
)
from offline_assistants.store import Store

RUN_EVENTS: dict[RunStatus, EventName] = {
    "queued": "thread.run.queued", "in_progress": "thread.run.in_progress",
    "requires_action": "thread.run.requires_action", "cancelling": "thread.run.cancelling",
    "completed": "thread.run.completed", "incomplete": "thread.run.incomplete", "failed": "thread.run.failed",
    "cancelled": "thread.run.cancelled", "expired": "thread.run.expired",
}
STEP_EVENTS: dict[StepStatus, EventName] = {
    "in_progress": "thread.run.step.in_progress", "completed": "thread.run.step.completed",
    "failed": "thread.run.step.failed", "cancelled": "thread.run.step.cancelled",
    "expired": "thread.run.step.expired",
}
# The Run field each status stamps (the API has no incomplete_at or expired_at on runs).
RUN_STAMPS: dict[RunStatus, str] = {"completed": "completed_at", "failed": "failed_at", "cancelled": "cancelled_at"}
# What an ending leaves the run's open steps and unfinished message as.
STEP_ENDINGS: dict[RunStatus, StepStatus] = {
    "completed": "completed", "incomplete": "cancelled", "failed": "failed", "cancelled": "cancelled",
    "expired": "expired",
}
MESSAGE_ENDINGS: dict[RunStatus, str] = {  # the API's message incomplete_details.reason values
    "incomplete": "max_tokens", "failed": "run_failed", "cancelled": "run_cancelled", "expired": "run_expired",
}


class IllegalTransition(RuntimeError):
    def __init__(self, run_id: str, current: RunStatus, to: RunStatus) -> None:
        super().__init__(f"run {run_id}: {current} -> {to} is not a transition")
        self.run_id, self.current, self.to = run_id, current, to


class Lifecycle:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self.store = store
        self.bus = bus
        # Runs created with include[] of file search content: their step events carry it until they end.
        self._content_runs: set[str] = set()

    # --- a run ---
    def announce(self, run_id: str, *, show_content: bool = False) -> Run:
        """A run just stored `queued`: `thread.run.created`, then `thread.run.queued`. `show_content`: its step
        events carry file search content (the run was created with that include[])."""
        if show_content:
            self._content_runs.add(run_id)
        run = self.store.runs.get(None, run_id)
        self._publish_run(run, "thread.run.created")
        self._publish_run(run, "thread.run.queued")
        return run

    def move(self, run_id: str, to: RunStatus | Callable[[Run], RunStatus | None],
             values: dict[str, Any] | Callable[[RunStatus], dict[str, Any]] | None = None, *,
             during: Callable[[], None] | None = None) -> Run | None:
        """Move the run; None (nothing written) when `to`, called on the freshly read run, says None.
        `during` writes what belongs to the move in the same transaction (the tool outputs of a submission)."""
        ts = now()
        closed: list[tuple[str, StepStatus]] = []
        with self.store.database.write():
            run = self.store.runs.get(None, run_id)
            target = to(run) if callable(to) else to
            if target is None:
                return None
            if target not in TRANSITIONS[run.status]:
                raise IllegalTransition(run_id, run.status, target)
            update: dict[str, Any] = {"status": target, **((values(target) if callable(values) else values) or {})}
            if target == "in_progress" and run.started_at is None:
                update["started_at"] = ts
            if target in RUN_STAMPS:
                update[RUN_STAMPS[target]] = ts
            if target in TERMINAL_STATUSES:
                update["required_action"] = None
                update["expires_at"] = None  # as the real API: an ended run no longer expires
                error = update.get("last_error")
                for step in self.store.runs.open_steps(run_id):
                    status = STEP_ENDINGS[target]
                    self._write_step(step.id, status, ts, error if status == "failed" else None)
                    closed.append((step.id, status))
                if target in MESSAGE_ENDINGS:
                    self.store.messages.end_unfinished(run_id, ts, MESSAGE_ENDINGS[target])
            if during is not None:
                during()
            self.store.runs.update(run_id, update)
            # The run as this move left it: read after commit, a faster mover (the worker ending a run the client
            # just asked to cancel) could already have changed it, and the event and the reply would say so.
            moved = self.store.runs.get(None, run_id)
        for step_id, status in closed:
            self._publish_step(self.store.runs.get_step(run_id, step_id), STEP_EVENTS[status])
        self._publish_run(moved, RUN_EVENTS[target])
        if target in TERMINAL_STATUSES:
            self._content_runs.discard(run_id)  # no step event follows an ending
        return moved

    def settle(self, run_id: str, to: RunStatus, values: dict[str, Any] | None = None) -> Run | None:
        """The worker's move at the end of a round or run; a cancellation the client asked for meanwhile wins."""
        def route(run: Run) -> RunStatus:
            return "cancelled" if run.status == "cancelling" and to != "failed" else to
        return self.move(run_id, route, lambda status: (values or {}) if status == to else {})

    def recover(self) -> list[str]:
        """At start-up, end the runs a previous process left mid-flight (as RECOVERY says), so no thread stays
        locked; each ending is a move like any other (events, expires_at). The ids of the runs ended."""
        error = {"code": "server_error", "message": "The server stopped before this run finished."}
        ended = []
        for row in self.store.runs.all_active():
            to = RECOVERY.get(row["status"])
            if to is not None:
                self.move(row["id"], to, {} if to == "cancelled" else {"last_error": error})
                ended.append(row["id"])
        return ended

    # --- its steps ---
    def open_step(self, values: dict[str, Any]) -> RunStep:
        """Store a step `in_progress` and announce it: `thread.run.step.created`, then `.in_progress`."""
        step = self.store.runs.insert_step(values)
        shown = self._shown(step)
        if step.type == "tool_calls":
            # As the real API streams it: the step opens with no calls; a first delta per call brings its id,
            # type and name (the SDK's on_tool_call_created), later deltas only what is new (step_delta).
            shown = shown.model_copy(update={"step_details": {"type": "tool_calls", "tool_calls": []}})
        data = shown.model_dump(mode="json")  # the same object for both events: dumped once
        self.bus.publish(step.thread_id, "thread.run.step.created", data)
        self.bus.publish(step.thread_id, "thread.run.step.in_progress", data)
        return step

    def step_delta(self, thread_id: str, step_id: str, call: dict[str, Any]) -> None:
        """What is new of one call of a tool_calls step being written (`call` holds its index and type)."""
        self.bus.publish(thread_id, "thread.run.step.delta", {
            "id": step_id, "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
        })

    def close_step(self, run_id: str, step_id: str, status: StepStatus, values: dict[str, Any] | None = None,
                   *, error: dict[str, str] | None = None) -> None:
        """End one step (`completed`, `cancelled`, `failed`, `expired`), write `values` with it, announce it."""
        with self.store.database.write():
            if values:
                self.store.runs.update_step(step_id, values)
            self._write_step(step_id, status, now(), error)
        self._publish_step(self.store.runs.get_step(run_id, step_id), STEP_EVENTS[status])

    def _write_step(self, step_id: str, status: StepStatus, ts: int, error: dict[str, str] | None) -> None:
        values: dict[str, Any] = {"status": status, f"{status}_at": ts}
        if error is not None:
            values["last_error"] = error
        self.store.runs.update_step(step_id, values)

    # --- the events ---
    def _shown(self, step: RunStep) -> RunStep:
        """A step as its events show it: with file search content only for runs created asking for it."""
        return shown_step(step, (FILE_SEARCH_CONTENT,) if step.run_id in self._content_runs else ())

    def _publish_run(self, run: Run, event: EventName) -> None:
        self.bus.publish(run.thread_id, event, run.model_dump(mode="json"))

    def _publish_step(self, step: RunStep, event: EventName) -> None:
        self.bus.publish(step.thread_id, event, self._shown(step).model_dump(mode="json"))
