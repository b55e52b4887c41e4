"""What the code interpreter's bubblewrap sandbox costs: kernel start, per-execution round trip and a kernel's first
plot, sandboxed (`sandbox="required"`) against unsandboxed (`sandbox="off"`), in one run on the same runner code.

Method: two JupyterCodeRunners (one per mode) over fresh directories. Each repetition, in alternating order (off then
sandboxed, then the other way round), each mode gets a new session and measures:

start      wall time of the session's first `execute("pass")`: kernel start (bwrap, the launcher, ipykernel) and
           that first execution, as a thread's first tool call sees it
exec       median wall time of --execs `execute("pass")` calls on the warm kernel: the per-execution overhead
           (the runner's snapshot of the working directory, the sandbox's task count, the ZMQ round trip)
plot       the session's first `import matplotlib.pyplot; plt.plot(...); plt.show()`: a sandboxed kernel has no
           persistent home, so matplotlib builds its font list again in every kernel

The session is then shut down (not measured). Reported: medians over --reps repetitions, and sandbox / off ratios
(above 1: the sandbox is slower). The sandbox probe (`detection.detect()`, once per server process) is timed too.
Other processes' CPU use is measured over each sample (a shared 2-core machine); repetitions where it reached
--busy cores are run again, up to 3 tries.

measure() returns a SandboxResult; the script prints its line: RESULT sandbox start_off=.. start_sandbox=..
start_ratio=.. exec_ms_off=.. ...
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from offline_assistants.bench.common import log, machine
from offline_assistants.bench.measure import OtherLoad, median, wait_quiet
from offline_assistants.tools.code_interpreter import JupyterCodeRunner
from offline_assistants.tools.code_interpreter.sandbox import detection

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"


@dataclass(frozen=True)
class Sample:
    """One kernel: its start, a warm execution (median), its first plot."""

    start: float  # s
    exec_ms: float
    plot: float  # s


@dataclass(frozen=True)
class Figure:
    """Medians of one figure unsandboxed and sandboxed; ratio above 1: the sandbox is slower."""

    off: float
    sandbox: float
    ratio: float


@dataclass(frozen=True)
class SandboxResult:
    probe_ms: float  # detection.detect(), once per server process
    start: Figure  # s
    exec_ms: Figure
    plot: Figure  # s

    def line(self) -> str:
        fields = {"probe_ms": self.probe_ms}
        for key, figure in (("start", self.start), ("exec_ms", self.exec_ms), ("plot", self.plot)):
            fields |= {f"{key}_off": figure.off, f"{key}_sandbox": figure.sandbox, f"{key}_ratio": figure.ratio}
        return "RESULT sandbox " + " ".join(f"{k}={v:.3f}" for k, v in fields.items())


def sample(runner: JupyterCodeRunner, session: str, execs: int) -> Sample:
    t = time.perf_counter()
    assert runner.execute(session, "pass").error is None
    start = time.perf_counter() - t
    times = []
    for _ in range(execs):
        t = time.perf_counter()
        runner.execute(session, "pass")
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    result = runner.execute(session, PLOT)
    plot = time.perf_counter() - t
    assert result.error is None and result.images, result.logs
    runner.shutdown(session, remove_files=True)
    return Sample(start=start, exec_ms=median(times) * 1000, plot=plot)


def measure(reps: int, execs: int, busy: float, quiet_wait: float) -> SandboxResult:
    t = time.perf_counter()
    found = detection.detect()
    probe_ms = (time.perf_counter() - t) * 1000
    if found.bwrap is None:
        raise SystemExit(f"no sandbox runs here: {found.reason}")
    log(f"sandbox: {found.bwrap.describe()}, probed in {probe_ms:.0f} ms")
    results: dict[str, list[Sample]] = {"off": [], "sandbox": []}
    with tempfile.TemporaryDirectory(prefix="oa-bench-") as tmp:
        runners = {"off": JupyterCodeRunner(Path(tmp) / "off", sandbox="off"),
                   "sandbox": JupyterCodeRunner(Path(tmp) / "sb", sandbox="required")}
        try:
            wait_quiet(quiet_wait, label="start")
            for rep in range(reps):
                order = ["off", "sandbox"] if rep % 2 == 0 else ["sandbox", "off"]
                for mode in order:
                    for attempt in range(3):
                        meter = OtherLoad().start()
                        got = sample(runners[mode], f"{mode}-{rep}-{attempt}", execs)
                        others = meter.stop()
                        log(f"rep {rep} {mode}: start {got.start:.3f} s, exec {got.exec_ms:.2f} ms, "
                            f"first plot {got.plot:.2f} s, others {others:.2f} cores")
                        if others < busy:
                            break
                    results[mode].append(got)
        finally:
            for runner in runners.values():
                runner.close()

    def figure(of: Callable[[Sample], float]) -> Figure:
        off, sb = median([of(r) for r in results["off"]]), median([of(r) for r in results["sandbox"]])
        return Figure(off=off, sandbox=sb, ratio=sb / off)

    return SandboxResult(probe_ms=probe_ms, start=figure(lambda r: r.start), exec_ms=figure(lambda r: r.exec_ms),
                         plot=figure(lambda r: r.plot))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=8, help="kernels started per mode (default: %(default)s)")
    ap.add_argument("--execs", type=int, default=50, help="executions timed per kernel (default: %(default)s)")
    ap.add_argument("--busy", type=float, default=0.3, help="others' cores that void a sample (default: %(default)s)")
    ap.add_argument("--quiet-wait", type=float, default=30, help="seconds to wait for a quiet machine first")
    args = ap.parse_args()
    log("machine:", machine())
    print(measure(args.reps, args.execs, args.busy, args.quiet_wait).line())


if __name__ == "__main__":
    main()
