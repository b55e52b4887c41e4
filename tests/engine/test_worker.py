"""The scheduler (engine/worker.py): N worker threads on one FIFO queue, one expiry sweeper, idle and stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from offline_assistants.engine import Engine
from offline_assistants.engine import worker as worker_module
from offline_assistants.engine.worker import Worker
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import RunCreate
from offline_assistants.schemas.threads import ThreadCreate


class Recorder:
    """An execute() that holds each run until released, recording when each started and on which thread."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.threads: set[str] = set()
        self.running = 0
        self.most = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, run_id: str) -> None:
        with self._lock:
            self.started.append(run_id)
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(10)
        with self._lock:
            self.running -= 1


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_n_workers_run_n_at_once_in_fifo_order() -> None:
    recorder = Recorder()
    worker = Worker(recorder, lambda: None, concurrency=3)
    worker.start()
    try:
        for i in range(5):
            worker.submit(f"run_{i}")
        assert wait_for(lambda: len(recorder.started) == 3)
        time.sleep(0.1)  # the other two wait: three are held
        assert sorted(recorder.started) == ["run_0", "run_1", "run_2"]
        assert recorder.running == 3 and len(recorder.threads) == 3
        assert not worker.idle()
        recorder.release.set()
        assert wait_for(worker.idle)
        assert recorder.started[3:] == ["run_3", "run_4"]  # taken in the order they were submitted
        assert recorder.most == 3
    finally:
        recorder.release.set()
        worker.stop()


def test_one_worker_runs_one_at_a_time() -> None:
    recorder = Recorder()
    recorder.release.set()
    worker = Worker(recorder, lambda: None)
    worker.start()
    try:
        for i in range(4):
            worker.submit(f"run_{i}")
        assert wait_for(worker.idle)
        assert recorder.started == [f"run_{i}" for i in range(4)] and recorder.most == 1
    finally:
        worker.stop()


def test_the_expiry_sweep_runs_once_per_tick_whatever_the_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "SWEEP_EVERY_S", 0.05)
    sweeps: list[float] = []
    recorder = Recorder()  # holds every worker busy: the sweep must not wait for them
    worker = Worker(recorder, lambda: sweeps.append(time.monotonic()), concurrency=4)
    worker.start()
    try:
        for i in range(4):
            worker.submit(f"run_{i}")
        time.sleep(0.5)
        assert 5 <= len(sweeps) <= 11, sweeps  # one sweeper at 20 per second, not four
    finally:
        recorder.release.set()
        worker.stop()
    done = len(sweeps)
    time.sleep(0.15)
    assert len(sweeps) == done  # stop() ends the sweeper too


def test_a_failing_run_or_sweep_does_not_end_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "SWEEP_EVERY_S", 0.02)
    ran: list[str] = []
    sweeps: list[int] = []

    def execute(run_id: str) -> None:
        ran.append(run_id)
        if run_id == "bad":
            raise RuntimeError("boom")

    def expire() -> None:
        sweeps.append(1)
        raise RuntimeError("sweep boom")

    worker = Worker(execute, expire, concurrency=2)
    worker.start()
    try:
        worker.submit("bad")
        worker.submit("good")
        assert wait_for(worker.idle)
        assert sorted(ran) == ["bad", "good"]
        assert wait_for(lambda: len(sweeps) >= 3)
    finally:
        worker.stop()


def test_stop_lets_submitted_runs_finish_and_start_again_works() -> None:
    ran: list[str] = []
    worker = Worker(lambda run_id: (time.sleep(0.05), ran.append(run_id), None)[-1], lambda: None, concurrency=2)
    worker.start()
    for i in range(4):
        worker.submit(f"run_{i}")
    worker.stop()
    assert sorted(ran) == [f"run_{i}" for i in range(4)] and worker.idle()
    worker.start()
    worker.submit("again")
    assert wait_for(lambda: "again" in ran)
    worker.stop()


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Worker(lambda run_id: None, lambda: None, concurrency=0)


def _runs_on(engine: Engine, threads: int) -> list[tuple[str, str]]:
    assistant = engine.assistants.create(AssistantCreate(model="gpt-4o"))
    made = []
    for _ in range(threads):
        thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="hi")]))
        run, _ = engine.runs.create(thread.id, RunCreate(assistant_id=assistant.id))
        made.append((thread.id, run.id))
    return made


def test_an_engine_on_a_parallel_backend_executes_runs_at_once(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["one two three four"] * 3, delay_s=0.4)
    backend.parallel = True  # type: ignore[attr-defined]
    engine = make_engine(backend, max_concurrent_runs=3)
    assert engine.worker.concurrency == 3
    started = time.monotonic()
    made = _runs_on(engine, 3)
    assert engine.wait_idle(20)
    # Three runs of 4 x 0.4 s each: together well under the 4.8 s they take one after another.
    assert time.monotonic() - started < 4.0
    for thread_id, run_id in made:
        assert engine.runs.get(thread_id, run_id).status == "completed"


def test_a_backend_that_generates_one_at_a_time_gets_one_worker(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend(["a b"] * 2, delay_s=0.25), max_concurrent_runs=4)
    assert engine.worker.concurrency == 1
    started = time.monotonic()
    made = _runs_on(engine, 2)
    assert engine.wait_idle(20)
    assert time.monotonic() - started >= 1.0  # 2 runs x 2 words x 0.25 s, one after the other
    for thread_id, run_id in made:
        assert engine.runs.get(thread_id, run_id).status == "completed"
