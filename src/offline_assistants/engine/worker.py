"""The scheduler: which run executes when, on which thread. Runs are taken in the order they were submitted
(one FIFO queue) by `concurrency` worker threads, each executing one run at a time; the HTTP threads never
wait on the model. A local llama.cpp model serves one generation at a time, so it gets one worker; a remote
server that batches (llm/remote.py) is fed by several. Admission (engine/runs.py) already keeps each thread to
one active run, so two workers never execute runs of the same thread. Separately, one sweeper thread expires
runs that waited too long, once a second, whatever the workers are doing."""

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
    def __init__(self, execute: Callable[[str], None], expire: Callable[[], None], *, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency
        self._execute = execute
        self._expire = expire
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._pending = 0  # submitted and not yet finished: a counter, so no gap between get() and execution
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._threads:
            return
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._loop, name=f"offline-assistants-worker-{i}", daemon=True)
                         for i in range(self.concurrency)]
        self._threads.append(threading.Thread(target=self._sweep, name="offline-assistants-sweeper", daemon=True))
        for thread in self._threads:
            thread.start()

    def submit(self, run_id: str) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(run_id)

    def stop(self, timeout: float = 30.0) -> None:
        """End every thread once the runs already submitted have executed (each thread waited for up to
        `timeout`): the stop sentinels queue behind them."""
        if not self._threads:
            return
        self._stopping.set()
        for _ in range(self.concurrency):
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0

    def _loop(self) -> None:
        while True:
            run_id = self._queue.get()
            if run_id is None:
                return
            try:
                self._execute(run_id)
            except Exception:  # noqa: BLE001 - the worker must outlive any one run
                log.exception("worker: run %s", run_id)
            finally:
                with self._lock:
                    self._pending -= 1

    def _sweep(self) -> None:
        while not self._stopping.wait(SWEEP_EVERY_S):
            try:
                self._expire()
            except Exception:  # noqa: BLE001 - a failed sweep is tried again next second
                log.exception("worker: expiry sweep")


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
