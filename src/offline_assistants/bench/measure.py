"""What every benchmark measures with: wall times, medians and percentiles, and the CPU meter that tells a clean
sample from one taken while other processes were busy (the benchmarks share small machines). The tests that time
the server (tests/reliability) use the same meter and percentile."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from offline_assistants.bench.common import log

T = TypeVar("T")
TICK = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in these


# --- statistics -------------------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def result_value(x: float | None) -> str:
    """A RESULT line's figure: three decimals, or "na" where nothing was measured."""
    return "na" if x is None else f"{x:.3f}"


def percentile(values: list[float], q: float) -> float:
    """The value at 0-based rank floor(q * n) of the sorted values (q in 0..1): always one that was measured, never
    below the true q-quantile; nan when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def timed(fn: Callable[[], T], reps: int) -> tuple[list[float], T]:
    """Wall times (seconds) of `reps` calls of fn (at least one), and the last call's result."""
    times = []
    for _ in range(max(1, reps)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return times, out


# --- the CPU meter ----------------------------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after "pid (name)" (the name may hold spaces), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # it ended between the listing and the read
        return None
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads) so far, or 0 when it is gone."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: proc(5) 14, 15


def tree_cpu_seconds(root: int) -> float:
    """CPU time of `root` and every living process below it: the model process and code kernels are ours."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo += children.get(pid, [])
    return total / TICK


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has used, all cores together (/proc/stat, everything but idle and
    iowait; guest time is already inside user time)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


class OtherLoad:
    """How many cores processes outside this process tree kept busy between start() and stop() (averaged)."""

    def start(self) -> OtherLoad:
        self._t = time.monotonic()
        self._busy, self._ours = machine_busy_seconds(), tree_cpu_seconds(os.getpid())
        return self

    def stop(self) -> float:
        busy, ours = machine_busy_seconds() - self._busy, tree_cpu_seconds(os.getpid()) - self._ours
        return max(0.0, (busy - ours) / max(1e-6, time.monotonic() - self._t))


def wait_quiet(max_wait_s: float, threshold: float = 0.2, label: str = "") -> float:
    """Wait (up to max_wait_s) until other processes use less than `threshold` cores over a 1 s sample.
    Returns the last sample. Benchmarks print it, so a loaded measurement can be told from a clean one."""
    deadline = time.monotonic() + max_wait_s
    warned = False
    while True:
        meter = OtherLoad().start()
        time.sleep(1.0)
        load = meter.stop()
        if load < threshold or time.monotonic() > deadline:
            if load >= threshold:
                log(f"{label}: other processes still use {load:.2f} cores; measuring anyway")
            return load
        if not warned:
            log(f"{label}: other processes use {load:.2f} cores; waiting up to {max_wait_s:.0f}s for quiet")
            warned = True
