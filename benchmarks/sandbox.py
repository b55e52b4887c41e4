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

Ends with one stdout line: RESULT sandbox start_off=.. start_sandbox=.. start_ratio=.. exec_off_ms=.. ...
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import OtherLoad, log, machine, median, wait_quiet

from offline_assistants.tools.code_interpreter import JupyterCodeRunner
from offline_assistants.tools.code_interpreter.sandbox import detection

PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"


def sample(runner: JupyterCodeRunner, session: str, execs: int) -> dict[str, float]:
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
    return {"start": start, "exec_ms": median(times) * 1000, "plot": plot}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=8, help="kernels started per mode (default: %(default)s)")
    ap.add_argument("--execs", type=int, default=50, help="executions timed per kernel (default: %(default)s)")
    ap.add_argument("--busy", type=float, default=0.3, help="others' cores that void a sample (default: %(default)s)")
    ap.add_argument("--quiet-wait", type=float, default=30, help="seconds to wait for a quiet machine first")
    args = ap.parse_args()

    log("machine:", machine())
    t = time.perf_counter()
    found = detection.detect()
    probe_ms = (time.perf_counter() - t) * 1000
    if found.bwrap is None:
        raise SystemExit(f"no sandbox runs here: {found.reason}")
    log(f"sandbox: {found.bwrap.describe()}, probed in {probe_ms:.0f} ms")
    results: dict[str, list[dict[str, float]]] = {"off": [], "sandbox": []}
    with tempfile.TemporaryDirectory(prefix="oa-bench-") as tmp:
        runners = {"off": JupyterCodeRunner(Path(tmp) / "off", sandbox="off"),
                   "sandbox": JupyterCodeRunner(Path(tmp) / "sb", sandbox="required")}
        try:
            wait_quiet(args.quiet_wait, label="start")
            for rep in range(args.reps):
                order = ["off", "sandbox"] if rep % 2 == 0 else ["sandbox", "off"]
                for mode in order:
                    for attempt in range(3):
                        meter = OtherLoad().start()
                        got = sample(runners[mode], f"{mode}-{rep}-{attempt}", args.execs)
                        others = meter.stop()
                        log(f"rep {rep} {mode}: start {got['start']:.3f} s, exec {got['exec_ms']:.2f} ms, "
                            f"first plot {got['plot']:.2f} s, others {others:.2f} cores")
                        if others < args.busy:
                            break
                    results[mode].append(got)
        finally:
            for runner in runners.values():
                runner.close()

    def med(mode: str, key: str) -> float:
        return median([r[key] for r in results[mode]])

    out = {"probe_ms": probe_ms}
    for key in ("start", "exec_ms", "plot"):
        off, sb = med("off", key), med("sandbox", key)
        out[f"{key}_off"], out[f"{key}_sandbox"], out[f"{key}_ratio"] = off, sb, sb / off
    print("RESULT sandbox " + " ".join(f"{k}={v:.3f}" for k, v in out.items()))


if __name__ == "__main__":
    main()
