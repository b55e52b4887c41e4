"""What the benchmarks share besides measuring (bench/measure.py): the model options and opening the model as
`serve` does, progress lines, number formatting, realistic chat text and a description of the machine."""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from offline_assistants.schemas.messages import MessageRole

if TYPE_CHECKING:
    from offline_assistants.llm.llama import LlamaBackend
    from offline_assistants.llm.loading import ModelOptions
    from offline_assistants.llm.process import ProcessBackend
    from offline_assistants.llm.repack import RepackChoice

_T0 = time.monotonic()
_REPACK_CACHE = Path(tempfile.gettempdir()) / "oa-bench-cache"  # the repack verdicts of the benchmarks' runs


@dataclass(frozen=True)
class ModelSetup:
    """The model a benchmark measures, opened as `serve` opens it, and how the benchmark copes with a busy shared
    machine (the options add_model_options declares)."""

    n_ctx: int = 4096
    quiet_wait: float = 60.0  # before each measurement, wait up to this long for other processes to go idle
    busy: float = 0.1  # a sample during which other processes used this many cores is measured again
    max_attempts: int = 4  # tries per wanted sample
    backend: Literal["process", "in-process"] = "process"
    cpu_repack: Literal["auto", "on", "off"] = "auto"
    model: str | None = None  # a .gguf path or model name (None: the embedded default)
    threads: int | None = None  # llama.cpp threads (None: the usable cores)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ModelSetup:
        return cls(n_ctx=args.n_ctx, quiet_wait=args.quiet_wait, busy=args.busy, max_attempts=args.max_attempts,
                   backend=args.backend, cpu_repack=args.cpu_repack, model=args.model, threads=args.threads)


def add_model_options(ap: argparse.ArgumentParser, *, unit: str) -> None:
    """The options every model benchmark shares (ModelSetup's fields)."""
    d = ModelSetup()
    ap.add_argument("--n-ctx", type=int, default=d.n_ctx)
    ap.add_argument("--quiet-wait", type=float, default=d.quiet_wait,
                    help="before each measurement, wait up to this many seconds for other processes to go idle")
    ap.add_argument("--busy", type=float, default=d.busy,
                    help=f"a {unit} during which other processes used this many cores or more is discarded and "
                         "measured again (default %(default)s)")
    ap.add_argument("--max-attempts", type=int, default=d.max_attempts,
                    help="give up after this many attempts per wanted sample")
    ap.add_argument("--backend", choices=["process", "in-process"], default=d.backend,
                    help="the model in its own process, as `serve` runs it (default), or in this process (the "
                         "layout before the model process existed, for before/after figures)")
    ap.add_argument("--cpu-repack", choices=["auto", "on", "off"], default=d.cpu_repack,
                    help="as `serve --cpu-repack` (default auto)")
    ap.add_argument("--model", default=d.model,
                    help="a .gguf path or model name, as `serve --model` (default: the embedded default)")
    ap.add_argument("--threads", type=int, default=d.threads, help="llama.cpp threads (default: the usable cores)")


def model_options(setup: ModelSetup) -> ModelOptions:
    """The options `serve` would open the chosen model with (a baseline server gets the same n_ctx and threads)."""
    from offline_assistants.config import usable_cores
    from offline_assistants.llm.loading import ModelOptions

    return ModelOptions(n_ctx=setup.n_ctx, n_threads=setup.threads or usable_cores(), cpu_repack=setup.cpu_repack)


def repack_choice(setup: ModelSetup) -> RepackChoice:
    """The weight-repacking choice open_bench_backend makes (by then a cached verdict), for a baseline to load the
    model alike."""
    from offline_assistants.llm.catalog import resolve
    from offline_assistants.llm.loading import decide_repack

    choice, _, _ = decide_repack(resolve(setup.model).path, model_options(setup), _REPACK_CACHE)
    return choice


def open_bench_backend(setup: ModelSetup) -> LlamaBackend | ProcessBackend:
    """The chosen model behind the chosen backend, with the repack choice `serve` would make."""
    from offline_assistants.llm.catalog import resolve
    from offline_assistants.llm.llama import LlamaBackend
    from offline_assistants.llm.loading import open_backend

    model = resolve(setup.model)
    options = model_options(setup)
    if setup.backend == "in-process":
        choice = repack_choice(setup)
        log(choice.banner())
        return LlamaBackend(model.path, name=model.name, n_ctx=setup.n_ctx, n_threads=options.n_threads,
                            cpu_repack=choice.enabled)
    backend, choice = open_backend(model, options, cache_dir=_REPACK_CACHE)
    log(choice.banner())
    return backend


def log(*parts: Any) -> None:
    """Progress on stderr, with seconds since start (stdout is kept for the results)."""
    print(f"[{time.monotonic() - _T0:7.1f}s]", *parts, file=sys.stderr, flush=True)


def log_from(t0: float) -> None:
    """Count log times from t0 (a parent process's start: CLOCK_MONOTONIC is system-wide) instead of this
    process's."""
    global _T0
    _T0 = t0


def log_start() -> float:
    """When log's clock started (to hand to a child process's log_from)."""
    return _T0


def fmt(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


# --- realistic short chat messages ----------------------------------------------------------------------------

_WORDS = (  # noqa: SIM905 - a word list reads better as text
    "the a an and or but if so because when while after before with without about for from into over under "
    "this that these those it its they them their we our you your I my me he she his her there here "
    "is are was were be been being have has had do does did can could will would should may might must "
    "not no yes maybe also just only very really quite much many more most less few some any every each "
    "time day week year morning evening today tomorrow yesterday minute hour number list file code test "
    "function class method variable value error message thread model token context window prompt server "
    "request response client database table row column index query cache memory disk network user account "
    "price order item cart payment invoice address email phone meeting project plan idea question answer "
    "problem solution example result output input data report chart graph summary note draft version "
    "python javascript sql json api http loop array string integer float dictionary key path folder "
    "make take give get set put run build write read send check fix change update delete create open close "
    "start stop try use need want know think see look find show tell ask help explain compare convert "
    "good bad new old big small fast slow easy hard simple clear short long right wrong same different "
    "first last next previous other important possible likely sure exactly probably usually"
).split()
_OPENERS_USER = [
    "Can you", "Could you", "How do I", "What is", "Why does", "Is it possible to", "Please", "Thanks!",
    "I need to", "What about", "Ok, and", "Hmm,", "Quick question:", "One more thing:", "Also,",
]
_OPENERS_ASSISTANT = [
    "Sure!", "Of course.", "Here is", "Good question.", "Yes,", "No,", "To do that,", "The short answer:",
    "It depends.", "Let me explain.", "You can", "In short,", "Great,", "Happy to help.",
]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words) + 1), str(rng.randrange(1, 10_000)))
    return " ".join(words)


def chat_message(rng: random.Random, role: str) -> str:
    """One plausible chat message: users write 2-40 words, assistants 5-160 (sometimes a list or code)."""
    if role == "user":
        n = int(min(40, max(2, rng.lognormvariate(2.3, 0.7))))
        text = rng.choice(_OPENERS_USER) + " " + _sentence(rng, n)
        return text + rng.choice(["?", "?", ".", "!", ""])
    n = int(min(160, max(5, rng.lognormvariate(3.4, 0.8))))
    head = rng.choice(_OPENERS_ASSISTANT)
    r = rng.random()
    if r < 0.15 and n > 20:  # a short list
        items = [f"{i + 1}. {_sentence(rng, max(3, n // 4))}." for i in range(3)]
        return head + " " + _sentence(rng, 6) + ":\n" + "\n".join(items)
    if r < 0.25 and n > 15:  # a bit of code
        name = rng.choice(["total", "items", "result", "value", "rows"])
        code = f"```python\n{name} = [x * 2 for x in range({rng.randrange(2, 99)})]\nprint(sum({name}))\n```"
        return head + " " + _sentence(rng, n // 2) + ":\n" + code
    sentences = []
    left = n
    while left > 0:
        k = min(left, rng.randrange(6, 20))
        s = _sentence(rng, k)
        sentences.append(s[0].upper() + s[1:] + ".")
        left -= k
    return head + " " + " ".join(sentences)


def conversation(seed: int, n: int) -> Iterator[tuple[MessageRole, str]]:
    """(role, text) pairs, alternating user/assistant, deterministic for a seed."""
    rng = random.Random(seed)
    for i in range(n):
        role: MessageRole = "user" if i % 2 == 0 else "assistant"
        yield role, chat_message(rng, role)


# --- the machine ---------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import platform
    import subprocess

    info = {"python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    info["cores"] = str(len(os.sched_getaffinity(0)))
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["ram_gib"] = f"{kb / 2**20:.1f}"
    except OSError:
        pass
    try:
        import llama_cpp

        info["llama_cpp_python"] = llama_cpp.__version__
    except ImportError:
        pass
    return info
