"""The events a run emits (the real API's streaming event names) and a fan-out to whoever listens.

Every event is published here after the state it describes is stored, so polling (which reads the store) and
streaming (which listens here) always agree: run and step events by the lifecycle (lifecycle.py), message events
by whoever writes the message. Listeners subscribe per thread: a thread has at most one
active run, so "everything on this thread" is "everything of its run".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

EventName = Literal[
    "thread.created",
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.requires_action",
    "thread.run.completed",
    "thread.run.incomplete",
    "thread.run.failed",
    "thread.run.cancelling",
    "thread.run.cancelled",
    "thread.run.expired",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.run.step.delta",
    "thread.run.step.completed",
    "thread.run.step.failed",
    "thread.run.step.cancelled",
    "thread.run.step.expired",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta",
    "thread.message.completed",
    "thread.message.incomplete",
    "error",
    "done",
]

# A stream ends after one of these: the run is over, or it waits for the client's tool outputs.
FINAL_RUN_EVENTS = frozenset({
    "thread.run.completed", "thread.run.incomplete", "thread.run.failed", "thread.run.cancelled",
    "thread.run.expired", "thread.run.requires_action",
})


@dataclass(frozen=True)
class Event:
    event: EventName
    data: dict[str, Any]


Listener = Callable[[Event], None]


class Subscription:
    def __init__(self, bus: EventBus, thread_id: str, listener: Listener) -> None:
        self._bus = bus
        self.thread_id = thread_id
        self.listener = listener

    def close(self) -> None:
        self._bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[str, list[Subscription]] = {}

    def subscribe(self, thread_id: str, listener: Listener) -> Subscription:
        sub = Subscription(self, thread_id, listener)
        with self._lock:
            self._subs.setdefault(thread_id, []).append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.thread_id, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(sub.thread_id, None)

    def listening(self, thread_id: str | None = None) -> int:
        """How many subscriptions are open (on one thread, or on all): a client gone must leave none behind."""
        with self._lock:
            if thread_id is not None:
                return len(self._subs.get(thread_id, ()))
            return sum(len(subs) for subs in self._subs.values())

    def publish(self, thread_id: str, event: EventName, data: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subs.get(thread_id, ()))
        message = Event(event, data)
        for sub in subs:
            # A listener that fails (a client gone) must not stop the run or the other listeners.
            try:
                sub.listener(message)
            except Exception:  # noqa: BLE001
                sub.close()
