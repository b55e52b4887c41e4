"""The single generation worker: runs execute one at a time, so one model instance serves them all, and the
HTTP threads never wait on the model. Between runs it expires runs that waited too long."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from offline_assistants.ids import now
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


def recover(store: Store) -> list[str]:
    """At start-up, end the runs a previous process left mid-flight, so no thread stays locked.

    A run that was executing cannot be resumed (its model state is gone): it fails with the reason. A queued run
    never started: it expires. A run waiting for tool outputs keeps waiting until its own expires_at.
    """
    ended = []
    ts = now()
    for row in store.runs.all_active():
        if row["status"] == "requires_action":
            continue
        values: dict[str, Any]
        error = {"code": "server_error", "message": "The server stopped before this run finished."}
        if row["status"] == "queued":
            values = {"status": "expired", "last_error": error}
        elif row["status"] == "cancelling":
            values = {"status": "cancelled", "cancelled_at": ts}
        else:
            values = {"status": "failed", "failed_at": ts, "last_error": error}
        store.runs.update(row["id"], values)
        for step in store.runs.open_steps(row["id"]):
            store.runs.update_step(step.id, {"status": "failed", "failed_at": ts, "last_error": error})
        store.database.db.execute(
            "UPDATE messages SET status = 'incomplete', incomplete_at = ?, incomplete_details = ? "
            "WHERE run_id = ? AND status = 'in_progress'",
            (ts, '{"reason":"run_failed"}', row["id"]),
        )
        ended.append(row["id"])
    return ended
