"""The device check: what one `run` call executes on a lent GPU machine (benchmarks/README.md, "gpu: the device
check"). Standard library only: it installs what it measures with, then drives the project's benchmarks.

Phases, each with its own time limit inside one overall budget, in order of importance; a phase that fails or
runs out of time is reported and the next one runs (nothing here waits without a limit):

1. setup        the carried wheels into a folder on PYTHONPATH (pip --no-index: the machine has no network), the
                CUDA libraries' folders found, `llama_supports_gpu_offload()` asked, nvidia-smi read
2. model        the stand-in GGUF made from the carried header (offline_assistants/bench/standin.py)
3. llama_bench  llama.cpp's own figures on that file and GPU: pp512, pp4096, tg128 (also at a depth of 1024)
4. throughput   one streamed run through the server (benchmarks/throughput.py: uvicorn, the official SDK, the
                model in its own process) against raw llama-cpp-python on the same GPU; tok/s set against
                llama-bench's tg128
5. concurrency  aggregate tok/s of 1, 4 and 8 streamed runs at once (benchmarks/concurrency.py part 1,
                --parallel N), each against the same runs one after another
6. long_prompt  prompt evaluation of a ~3,500-token prompt through the server against raw (512-token chunks on a
                GPU, llm/batch.py) and against llama-bench's pp4096

Every figure is a `RESULT name key=value ...` line on stdout and in OUT/results.txt; the children's whole output is
in OUT/log.txt, llama-bench's in OUT/llama-bench.json, the phases' outcomes in OUT/summary.json.

--cpu-dry-run runs the same phases on this CPU from .gpu-dry/ (carry.sh --cpu-dry-run), with tiny sizes: the
embedded default model's header, a few tokens, 1 and 2 runs at once.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CUDA_LIBS = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13")
DRIVER_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64")


@dataclass(frozen=True)
class Sizes:
    """How much each phase measures: the device's sizes, or the dry run's tiny ones."""

    bench: list[str]  # llama-bench's arguments beyond the model
    throughput: list[str]
    concurrency: list[str]
    long_prompt: list[str]


GPU = Sizes(
    bench=["-ngl", "99", "-p", "512,4096", "-n", "128", "-d", "0,1024", "-r", "3"],
    throughput=["--reps", "3", "--prompt-tokens", "1000", "--max-tokens", "256", "--cpu-repack", "off"],
    concurrency=["--parts", "1", "--n", "1", "4", "8", "--tokens", "256", "--cpu-repack", "off"],
    long_prompt=["--reps", "2", "--prompt-tokens", "3500", "--max-tokens", "16", "--n-ctx", "8192",
                 "--cpu-repack", "off"],
)
DRY = Sizes(
    bench=["-p", "64", "-n", "16", "-r", "1", "-t", "2"],
    throughput=["--reps", "1", "--prompt-tokens", "150", "--max-tokens", "12", "--threads", "2"],
    concurrency=["--parts", "1", "--n", "1", "2", "--tokens", "8", "--threads", "2"],
    long_prompt=["--reps", "1", "--prompt-tokens", "400", "--max-tokens", "4", "--threads", "2"],
)


class Skipped(Exception):
    """A phase that cannot run here, by design (the dry run has no llama-bench): not a failure."""


@dataclass
class Phase:
    name: str
    status: str = "not run"  # ok, failed, timed out, skipped
    seconds: float = 0.0
    note: str = ""


@dataclass
class Check:
    out: Path
    carry: Path
    work: Path
    budget_s: float
    dry: bool
    started: float = field(default_factory=time.monotonic)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    results: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    figures: dict[str, dict[str, str]] = field(default_factory=dict)

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def say(self, line: str) -> None:
        print(line, flush=True)
        with (self.out / "log.txt").open("a") as f:
            f.write(line + "\n")

    def result(self, line: str) -> None:
        """A RESULT line: printed, kept for the summary, its key=value pairs kept for later phases."""
        self.say(line)
        self.results.append(line)
        with (self.out / "results.txt").open("a") as f:
            f.write(line + "\n")
        words = line.split()
        self.figures[words[1]] = dict(w.split("=", 1) for w in words[2:] if "=" in w)

    def run(self, argv: list[str], limit_s: float) -> tuple[int | None, str]:
        """A child process with a time limit, its whole group killed when over it; (exit code or None, stdout)."""
        with (self.out / "log.txt").open("a") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            child = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True,
                                     start_new_session=True)
            try:
                stdout, _ = child.communicate(timeout=max(1.0, limit_s))
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(child.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        stdout, _ = child.communicate(timeout=10)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                log.write(stdout or "")
                return None, stdout or ""
            log.write(stdout)
        return child.returncode, stdout

    def tail_of_log(self, n: int = 15) -> str:
        lines = (self.out / "log.txt").read_text(errors="replace").splitlines()
        return "\n".join("    " + line for line in lines[-n:])


def phase(check: Check, name: str, limit_s: float, body) -> bool:  # noqa: ANN001 - a callable of the check
    p = Phase(name)
    check.phases.append(p)
    limit = min(limit_s, check.left())
    if limit < 15:
        p.status, p.note = "timed out", "not started: the overall budget is spent"
        check.say(f"== {name}: SKIPPED ({p.note})")
        return False
    check.say(f"== {name} (up to {limit:.0f} s)")
    began = time.monotonic()
    try:
        p.note = body(check, limit) or ""
        p.status = "ok"
    except Skipped as e:
        p.status, p.note = "skipped", str(e)
    except TimeoutError as e:
        p.status, p.note = "timed out", str(e)
    except Exception as e:  # fail soft: report, go on with the next phase
        p.status, p.note = "failed", f"{type(e).__name__}: {e}"
    p.seconds = time.monotonic() - began
    check.say(f"== {name}: {p.status.upper()} in {p.seconds:.0f} s{': ' + p.note if p.note else ''}")
    if p.status in ("failed", "timed out"):
        check.say(check.tail_of_log())
    return p.status == "ok"


def checked(check: Check, argv: list[str], limit_s: float) -> str:
    code, stdout = check.run(argv, limit_s)
    if code is None:
        raise TimeoutError(f"killed after {limit_s:.0f} s")
    if code != 0:
        raise RuntimeError(f"exit code {code}")
    return stdout


# --- the phases ---------------------------------------------------------------------------------------------------


def setup(check: Check, limit: float) -> str:
    site = check.work / "site"
    shutil.rmtree(site, ignore_errors=True)  # a rerun on a warm machine installs afresh
    wheels = sorted(check.carry.glob("wheels/*.whl")) + sorted(check.carry.glob("wheelhouse/*.whl"))
    if not any(w.name.startswith("llama_cpp_python-") for w in wheels):
        raise RuntimeError(f"no llama_cpp_python wheel in {check.carry}/wheels (build_wheel.sh)")
    checked(check, [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--disable-pip-version-check", "--target", str(site), *map(str, wheels)], limit)
    lib_dirs = [str(site / "llama_cpp" / "lib"), str(check.carry / "bin")]  # bin: llama-bench's libllama-common
    if not check.dry:
        lib_dirs += cuda_lib_dirs()
    check.env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT / "src")])
    check.env["LD_LIBRARY_PATH"] = os.pathsep.join(lib_dirs + [check.env.get("LD_LIBRARY_PATH", "")]).strip(":")
    check.env["OFFLINE_ASSISTANTS_DATA"] = str(check.work / "data")
    probe = ("import llama_cpp, platform; print(llama_cpp.__version__, platform.python_version(), "
             "bool(llama_cpp.llama_supports_gpu_offload()))")
    code, stdout = check.run([sys.executable, "-c", probe], 60)
    if code != 0:  # most likely a library the loader cannot find: say which
        check.run(["bash", "-c", f"ldd {site}/llama_cpp/lib/*.so | grep -i 'not found' >&2"], 30)
        raise RuntimeError(f"llama_cpp does not import (exit code {code}); ldd's missing libraries are in the log")
    version, python, offload = stdout.split()
    gpu = "none"
    if not check.dry:
        code, smi = check.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], 30)
        gpu = smi.strip().replace(" ", "_") if code == 0 else "nvidia-smi_failed"
        check.run(["bash", "-c", f"nvidia-smi > {check.out}/nvidia-smi.txt 2>&1"], 30)
    check.result(f"RESULT device gpu={gpu} llama_cpp_python={version} python={python} gpu_offload={offload} "
                 f"cuda_lib_dirs={len(lib_dirs) - 2}")
    if offload != "True" and not check.dry:
        raise RuntimeError("this llama-cpp-python build does not offload to a GPU: the figures would be the CPU's")
    return ""


def cuda_lib_dirs() -> list[str]:
    """The folders of cudart and cuBLAS 13 on the device: its Python's nvidia/*/lib (PyTorch cu130's wheels), or a
    system CUDA."""
    found: dict[str, str] = {}
    roots = [p for p in sys.path if p.endswith("site-packages")]
    patterns = [f"{r}/nvidia/**/lib/" for r in roots] + ["/usr/local/cuda*/lib64/", "/usr/local/cuda*/targets/*/lib/",
                                                          "/usr/lib/x86_64-linux-gnu/"]
    for pattern in patterns:
        for folder in sorted(glob.glob(pattern, recursive=True)):
            for lib in CUDA_LIBS:
                if lib not in found and os.path.exists(os.path.join(folder, lib)):
                    found[lib] = folder.rstrip("/")
    missing = [lib for lib in CUDA_LIBS if lib not in found]
    if missing:
        raise RuntimeError(f"not found on this machine: {', '.join(missing)}")
    # the driver's libcuda.so.1, where the loader may not look by itself
    driver = [d for d in DRIVER_DIRS if os.path.exists(os.path.join(d, "libcuda.so.1"))][:1]
    return sorted(set(found.values())) + driver


def model(check: Check, limit: float) -> str:
    heads = sorted(check.carry.glob("model/*.head"))
    if not heads:
        raise RuntimeError(f"no model header in {check.carry}/model (carry.sh)")
    target = check.work / (heads[0].stem + "-standin.gguf")
    stdout = checked(check, [sys.executable, "-m", "offline_assistants.bench.standin", "fill", str(heads[0]),
                             str(target)], limit)
    check.env["OA_CHECK_MODEL"] = str(target)
    return stdout.strip()


def llama_bench(check: Check, limit: float, sizes: Sizes) -> str:
    binary = check.carry / "bin" / "llama-bench"
    if not binary.exists():
        if check.dry:
            raise Skipped("llama-bench is built for the GPU only (build_wheel.sh)")
        raise RuntimeError(f"{binary} was not carried (build_wheel.sh builds it)")
    stdout = checked(check, [str(binary), "-m", check.env["OA_CHECK_MODEL"], *sizes.bench, "-o", "json"], limit)
    (check.out / "llama-bench.json").write_text(stdout)
    figures = []
    for test in json.loads(stdout):
        kind = f"pp{test['n_prompt']}" if test["n_prompt"] else f"tg{test['n_gen']}"
        depth = f"_d{test['n_depth']}" if test.get("n_depth") else ""
        figures.append(f"{kind}{depth}_tok_s={test['avg_ts']:.1f}")
    check.result("RESULT llama_bench " + " ".join(figures))
    return ""


def benchmark(script: str, label: str, args: list[str]):  # noqa: ANN201 - a phase body
    def body(check: Check, limit: float) -> str:
        argv = [sys.executable, str(ROOT / "benchmarks" / script), "--model", check.env["OA_CHECK_MODEL"], *args]
        if script == "throughput.py":
            argv += ["--quiet-wait", "1", "--busy", "1000"]  # a lent machine runs nothing else; dry: never discard
        code, stdout = check.run(argv, limit)
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        for line in lines:
            name = line.split()[1]
            check.result(line.replace(f"RESULT {name} ", f"RESULT {label} ", 1))
        if code is None:
            raise TimeoutError(f"killed after {limit:.0f} s")
        if code != 0 or not lines:
            raise RuntimeError(f"exit code {code}, {len(lines)} RESULT lines")
        return ""
    return body


def compare(check: Check) -> None:
    """The check's own figures: through the server against llama.cpp alone on the same file and GPU."""
    bench, one, long = (check.figures.get(k, {}) for k in ("llama_bench", "throughput", "long_prompt"))
    pairs = [("one_run_vs_tg128", one.get("ours_tok_s"), bench.get("tg128_tok_s")),
             ("one_run_vs_tg128_d1024", one.get("ours_tok_s"), bench.get("tg128_d1024_tok_s")),
             ("long_prompt_vs_pp4096", long.get("ours_prompt_tok_s"), bench.get("pp4096_tok_s"))]
    ratios = [f"{k}={float(a) / float(b):.3f}" for k, a, b in pairs if a and b]
    if ratios:
        check.result("RESULT vs_llama_bench " + " ".join(ratios))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-dry-run", action="store_true", help="this CPU, .gpu-dry/, tiny sizes")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds for all phases (default %(default)s)")
    args = ap.parse_args()
    dry = args.cpu_dry_run
    out = Path(os.environ.get("OUT") or ROOT / ("gpu-check-dry-out" if dry else "gpu-check-out"))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("log.txt", "results.txt"):
        (out / name).unlink(missing_ok=True)
    work = Path("/tmp/oa-gpu-check-dry" if dry else "/tmp/oa-gpu-check")
    check = Check(out=out, carry=ROOT / (".gpu-dry" if dry else ".gpu"), work=work, budget_s=args.budget, dry=dry)
    sizes = DRY if dry else GPU
    check.say(f"device check ({'CPU dry run' if dry else 'GPU'}): carry {check.carry}, out {out}, budget "
              f"{args.budget:.0f} s, python {sys.executable}")
    if phase(check, "setup", 120, setup) and phase(check, "model", 120, model):
        phase(check, "llama_bench", 120, lambda c, t: llama_bench(c, t, sizes))
        phase(check, "throughput", 180, benchmark("throughput.py", "throughput", sizes.throughput))
        phase(check, "concurrency", 240, benchmark("concurrency.py", "concurrency", sizes.concurrency))
        phase(check, "long_prompt", 150, benchmark("throughput.py", "long_prompt", sizes.long_prompt))
        compare(check)
    (out / "summary.json").write_text(json.dumps({"phases": [asdict(p) for p in check.phases],
                                                  "results": check.results}, indent=1))
    ok = sum(p.status == "ok" for p in check.phases)
    bad = sum(p.status in ("failed", "timed out") for p in check.phases)
    check.say(f"== done in {time.monotonic() - check.started:.0f} s: {ok} of {len(check.phases)} phases ok, "
              f"{bad} failed or timed out")
    for p in check.phases:
        check.say(f"   {p.name:12s} {p.status:9s} {p.seconds:5.0f} s  {p.note}")
    for line in check.results:
        print(line)
    return 1 if bad or not ok else 0


if __name__ == "__main__":
    sys.exit(main())
