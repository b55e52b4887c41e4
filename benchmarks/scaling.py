"""Where one machine stops (docs/scaling.md): what the engine itself costs per run, with the model out of the way.

The model is the scripted one (llm/canned.py: a reply of N words, no delay, no compute), so every figure is the
engine's own: admission, the worker, the executor, the store, events.

1. **Runs/s the engine sustains**: --runs threads, each with one user message (set up untimed), then one run on
   each, all created at once through the engine's API (no HTTP); from the first create until every run has
   completed. With 1 worker, and with 4 (a backend that says `parallel`, as a remote server does).
2. **Database writes per run**, counted during part 1 on every SQLite connection the store opens (a trace
   callback): INSERT/UPDATE/DELETE statements and committed transactions, per run.
3. **SSE fan-out**: M clients at once (1, 8, 32), each streaming its own run of a --words-word reply over
   loopback HTTP (httpx, reading the event stream): delta events delivered per second, all clients together, and
   the wall time per event. The clients run in this process too, so they share the cores with the server.

measure() returns a ScalingResult; the script prints its line: RESULT scaling ...
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from offline_assistants.api import create_app
from offline_assistants.bench.common import log, machine
from offline_assistants.bench.measure import OtherLoad
from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import RunCreate
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store.db import Database
from offline_assistants.testing import serve

STATEMENTS: Counter[str] = Counter()


@dataclass(frozen=True)
class Workers:
    """Part 1 and 2 with this many workers: runs completed per second, database writes per run."""

    workers: int
    runs_s: float
    writes_per_run: dict[str, float]  # INSERT, UPDATE, DELETE, COMMIT statements per run


@dataclass(frozen=True)
class FanOut:
    """Part 3 with this many streaming clients."""

    clients: int
    events_s: float  # delta events delivered per second, all clients together
    us_per_event: float


@dataclass(frozen=True)
class ScalingResult:
    workers: tuple[Workers, ...]
    fan_out: tuple[FanOut, ...]
    others: float  # cores other processes used meanwhile
    cpu: str

    def line(self) -> str:
        fields: list[str] = []
        for w in self.workers:
            fields.append(f"runs_s_{w.workers}w={w.runs_s:.1f}")
            if w.workers == 1:
                fields += [f"{k.lower()}s_per_run={v:.1f}" for k, v in sorted(w.writes_per_run.items())]
        for f in self.fan_out:
            fields += [f"sse_{f.clients}_events_s={f.events_s:.0f}",
                       f"sse_{f.clients}_us_per_event={f.us_per_event:.0f}"]
        fields.append(f"cpu={self.cpu.replace(' ', '_')}")
        return "RESULT scaling " + " ".join(fields)


def _count_writes() -> None:
    """Every connection the store opens from here on reports its statements to STATEMENTS."""
    original = Database._connect

    def connect(self: Database) -> Any:
        db = original(self)
        db.conn.set_trace_callback(lambda sql: STATEMENTS.update([sql.lstrip().split(" ", 1)[0].upper()]))
        return db

    Database._connect = connect  # type: ignore[method-assign]


def _engine(folder: Path, workers: int, words: int) -> Engine:
    backend = CannedBackend(delay_s=0.0)
    backend.parallel = workers > 1
    reply = " ".join(f"w{i}" for i in range(words))  # all different: the loop guard (engine/loops.py) stays quiet
    backend.generate = _replying(backend, reply)  # type: ignore[method-assign]
    return Engine(Settings(data_dir=folder, max_concurrent_runs=workers, max_queued_runs=0), backend)


def _replying(backend: CannedBackend, reply: str) -> Any:
    def generate(prompt: list[int], sampling: Any, **kw: Any) -> Any:
        return backend.stream(prompt, reply, sampling, kw.get("cancelled", lambda: False))
    return generate


def runs_per_second(folder: Path, workers: int, runs: int) -> tuple[float, dict[str, float]]:
    engine = _engine(folder, workers, 2)
    try:
        assistant = engine.assistants.create(AssistantCreate(model="gpt-4o"))
        threads = [engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="hi")])).id
                   for _ in range(runs)]
        STATEMENTS.clear()
        started = time.perf_counter()
        for thread_id in threads:
            engine.runs.create(thread_id, RunCreate(assistant_id=assistant.id))
        assert engine.wait_idle(600)
        wall = time.perf_counter() - started
        writes = {k: v / runs for k, v in STATEMENTS.items() if k in ("INSERT", "UPDATE", "DELETE", "COMMIT")}
        return runs / wall, writes
    finally:
        engine.close()


def fan_out(folder: Path, clients: int, words: int) -> tuple[float, float]:
    engine = _engine(folder, clients, words)
    try:
        assistant = engine.assistants.create(AssistantCreate(model="gpt-4o")).id
        threads = [engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="hi")])).id
                   for _ in range(clients)]
        counts = [0] * clients
        with serve(create_app(engine)) as url:
            def client(i: int) -> None:
                with httpx.stream("POST", f"{url}/threads/{threads[i]}/runs", timeout=120,
                                  json={"assistant_id": assistant, "stream": True}) as response:
                    for line in response.iter_lines():
                        if line == "event: thread.message.delta":
                            counts[i] += 1

            workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            started = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - started
        events = sum(counts)
        assert events >= clients * words * 0.99, counts
        return events / wall, wall / events * 1e6
    finally:
        engine.close()


def measure(runs: int, words: int, clients: list[int]) -> ScalingResult:
    _count_writes()
    folder = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    load = OtherLoad().start()
    workers = []
    for n in (1, 4):
        rate, writes = runs_per_second(folder / f"runs{n}", n, runs)
        per_run = ", ".join(f"{v:.1f} {k}" for k, v in sorted(writes.items()))
        log(f"{n} worker(s): {rate:.1f} runs/s; per run: {per_run}")
        workers.append(Workers(n, rate, writes))
    fan = []
    for m in clients:
        rate, per_event_us = fan_out(folder / f"sse{m}", m, words)
        log(f"{m} streaming client(s): {rate:.0f} delta events/s, {per_event_us:.0f} us per event")
        fan.append(FanOut(m, rate, per_event_us))
    others = load.stop()
    log(f"others used {others:.2f} cores")
    return ScalingResult(tuple(workers), tuple(fan), others, machine().get("cpu", "?"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200, help="runs in part 1 (default: %(default)s)")
    ap.add_argument("--words", type=int, default=200, help="words in each streamed reply (default: %(default)s)")
    ap.add_argument("--clients", default="1,8,32", help="streaming clients at once (default: %(default)s)")
    args = ap.parse_args()
    print(measure(args.runs, args.words, [int(x) for x in args.clients.split(",")]).line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
