"""The single generation worker: runs execute one at a time, so one model instance serves them all, and the
HTTP threads never wait on the model. Between runs it expires runs that waited too long."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from offline_assistants.engine.lifecycle import Lifecycle
from offline_assistants.schemas.runs import RunStatus
from offline_assistants.store import Store

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 1.0


class Worker:
    def __init__(self, execute: Callable[[str], None], expire: Callable[[], None]) -> None:
        self._execute = execute
        self._expire = expire
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pending = 0  # submitted and not yet finished: a counter, so no gap between get() and execution
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="offline-assistants-worker", daemon=True)
            self._thread.start()

    def submit(self, run_id: str) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(run_id)

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0

    def _loop(self) -> None:
        while True:
            try:
                run_id = self._queue.get(timeout=SWEEP_EVERY_S)
            except queue.Empty:
                run_id = ""
            if run_id is None:
                return
            try:
                if run_id:
                    self._execute(run_id)
                self._expire()
            except Exception:  # noqa: BLE001 - the worker must outlive any one run
                log.exception("worker: run %s", run_id)
            finally:
                if run_id:
                    with self._lock:
                        self._pending -= 1


def recover(store: Store, lifecycle: Lifecycle) -> list[str]:
    """At start-up, end the runs a previous process left mid-flight, so no thread stays locked.

    A run that was executing cannot be resumed (its model state is gone): it fails with the reason. A queued run
    never started: it expires. A run being cancelled is cancelled. A run waiting for tool outputs keeps waiting
    until its own expires_at. Each ending goes through the lifecycle, as any other does (events, expires_at).
    """
    ended = []
    error = {"code": "server_error", "message": "The server stopped before this run finished."}
    routes: dict[str, tuple[RunStatus, dict[str, Any]]] = {
        "queued": ("expired", {"last_error": error}),
        "in_progress": ("failed", {"last_error": error}),
        "cancelling": ("cancelled", {}),
    }
    for row in store.runs.all_active():
        if row["status"] in routes:
            to, values = routes[row["status"]]
            lifecycle.move(row["id"], to, values)
            ended.append(row["id"])
    return ended
