"""The scheduler: which run executes when, on which thread. Runs are taken in the order they were submitted,
from one FIFO queue shared by `concurrency` worker threads (`--parallel`), each executing one run at a time; the
HTTP threads never wait on the model. Where the backend generates for several runs at once (the local model
decoding them together in one batch, a remote server that batches), there are as many workers as `--parallel`
asks; a backend that serves one request at a time gets one (engine/engine.py). Admission
(engine/runs.py) keeps each thread to one active run, so two workers never execute runs of the same thread.
Separately, one sweeper thread expires runs that waited too long, once a second, whatever the workers are doing.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

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

