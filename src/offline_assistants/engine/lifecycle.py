"""The run state machine, in one place: which status may follow which, and what each move writes and announces.

    queued ──────► in_progress ──────► completed | incomplete | failed | cancelled | expired
      │  ▲             │       │
      │  │             │       └──────► cancelling ──► cancelled | failed
      │  │             ▼                    ▲
      │  └──── requires_action ─────────────┘
      │  (submit_tool_outputs)  └──► expired | failed
      └──► cancelled | expired | failed

Every status change goes through `Lifecycle.move`: inside one write transaction it re-reads the run, checks the
move against TRANSITIONS (an illegal one raises IllegalTransition, a bug, not a client error), stamps the
matching `*_at` field, and on an ending closes the run's open steps, clears `expires_at` and `required_action`
and ends any message still being written; after the commit it publishes the step events, then the run's.

Callers that race (the client's cancel or submit_tool_outputs, the worker's expiry sweep and its own endings)
pass `to` as a function of the freshly read run: it names the status to move to, or None to leave the run as it
is, so of two racers exactly one moves it. `settle` is the worker's ending: a run the client asked to cancel
meanwhile (`cancelling`) ends `cancelled` instead. Steps end through `close_step` the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_assistants.engine.events import EventBus, EventName
from offline_assistants.ids import now
from offline_assistants.schemas.runs import Run, RunStatus, RunStep, StepStatus, shown_step
from offline_assistants.store import Store

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    "queued": frozenset({"in_progress", "cancelled", "expired", "failed"}),
    "in_progress": frozenset({"requires_action", "completed", "incomplete", "failed", "cancelling", "cancelled",
                              "expired"}),
    "requires_action": frozenset({"queued", "cancelling", "expired", "failed"}),
    "cancelling": frozenset({"cancelled", "failed"}),
    "completed": frozenset(),
    "incomplete": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}
ENDINGS: frozenset[RunStatus] = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)

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
    def __init__(self, store: Store, bus: EventBus, *, show: Callable[[RunStep], RunStep] = shown_step) -> None:
        self.store = store
        self.bus = bus
        self.show = show  # a step as its events show it (file search content only when asked for)

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
            to = target
            if to not in TRANSITIONS[run.status]:
                raise IllegalTransition(run_id, run.status, to)
            update: dict[str, Any] = {"status": to, **((values(to) if callable(values) else values) or {})}
            if to == "in_progress" and run.started_at is None:
                update["started_at"] = ts
            if to in RUN_STAMPS:
                update[RUN_STAMPS[to]] = ts
            if to in ENDINGS:
                update["required_action"] = None
                update["expires_at"] = None  # as the real API: an ended run no longer expires
                error = update.get("last_error")
                for step in self.store.runs.open_steps(run_id):
                    status = STEP_ENDINGS[to]
                    self._write_step(step.id, status, ts, error if status == "failed" else None)
                    closed.append((step.id, status))
                if to in MESSAGE_ENDINGS:
                    self.store.messages.end_unfinished(run_id, ts, MESSAGE_ENDINGS[to])
            if during is not None:
                during()
            self.store.runs.update(run_id, update)
            # The run as this move left it: read after commit, a faster mover (the worker ending a run the client
            # just asked to cancel) could already have changed it, and the event and the reply would say so.
            moved = self.store.runs.get(None, run_id)
        for step_id, status in closed:
            self._publish_step(run.thread_id, run_id, step_id, STEP_EVENTS[status])
        self.bus.publish(moved.thread_id, RUN_EVENTS[to], moved.model_dump(mode="json"))
        return moved

    def settle(self, run_id: str, to: RunStatus, values: dict[str, Any] | None = None) -> Run | None:
        """The worker's move at the end of a round or run; a cancellation the client asked for meanwhile wins."""
        def route(run: Run) -> RunStatus:
            return "cancelled" if run.status == "cancelling" and to != "failed" else to
        return self.move(run_id, route, lambda status: (values or {}) if status == to else {})

    def close_step(self, run_id: str, step_id: str, status: StepStatus, values: dict[str, Any] | None = None,
                   *, error: dict[str, str] | None = None) -> None:
        """End one step (`completed`, `cancelled`, `failed`, `expired`), write `values` with it, announce it."""
        with self.store.database.write():
            if values:
                self.store.runs.update_step(step_id, values)
            self._write_step(step_id, status, now(), error)
        self._publish_step(self.store.runs.get(None, run_id).thread_id, run_id, step_id, STEP_EVENTS[status])

    def _write_step(self, step_id: str, status: StepStatus, ts: int, error: dict[str, str] | None) -> None:
        values: dict[str, Any] = {"status": status, f"{status}_at": ts}
        if error is not None:
            values["last_error"] = error
        self.store.runs.update_step(step_id, values)

    def _publish_step(self, thread_id: str, run_id: str, step_id: str, event: EventName) -> None:
        step = self.show(self.store.runs.get_step(run_id, step_id))
        self.bus.publish(thread_id, event, step.model_dump(mode="json"))
