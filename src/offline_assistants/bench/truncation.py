"""Choosing a thread's context window: ours (stored per-message token counts + running sums, O(log N) seek)
against a stateless baseline that re-tokenizes the history on every turn.

Threads of 1,000, 10,000 and 100,000 realistic chat messages (alternating user/assistant) are stored through the
real store, with token counts from the real model's tokenizer (`backend.encode_message`: the GGUF's own chat
template around the message, then its tokenizer).

* The 1k and 10k threads are built by calling `engine.threads.add_message` once per message (timed).
* The 100k thread: its first messages are bulk-inserted by `MessageStore.append_many` (one executemany of exactly
  the rows `MessageStore.insert` writes), the values and tokens coming from `Threads.prepare`, i.e. from
  `backend.encode_message`; its last messages are appended with `add_message` (timed, at the 100k end). The bulk
  rows are checked against the rows `add_message` stored for the same texts in the 1k thread.

Timed per thread, median over many repetitions (ours is timed in rounds interleaving the sizes, so a drift in the
machine's speed, which is large on a shared VM, hits every size alike):
  ours      truncation.choose(auto, cut_seq=0 as on a fresh thread) + system + window + generation prefix;
  steady    Executor.prompt on the thread's stored cut (what every later turn runs: thread row, choose, concat);
  baseline  "full": read every message, render it with the chat template and tokenize it (backend.encode_message),
            then choose the window with the same rule as ours (a stateless trimmer handed the whole history, in
            the way LangChain's trim_messages counts the full message list with the model's tokenizer);
  newest    "newest-first": tokenize from the newest message back, stopping as soon as the window overflows
            (Ollama-style; same rule as ours), for information.

The rule ours applies on overflow (hysteresis): with cut_seq=0 on a fresh long thread the history overflows, so
the window is cut back to the newest messages that fit in HALF the budget (the cut is then kept for later turns).
Both baselines apply the same rule, so their chosen first message must equal ours; a second check compares the
plain "fill the whole budget" point (no hysteresis) of the newest-first walk with ours' `_first_fitting`.

measure() returns a TruncationResult; the script prints its line: RESULT truncation messages=.. ours_ms=..
baseline_ms=.. ratio=.. ours_1k_ms=.. ...
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from offline_assistants.bench.common import conversation, log, machine
from offline_assistants.bench.measure import OtherLoad, median, timed, wait_quiet
from offline_assistants.engine import Engine
from offline_assistants.engine.turn import DEFAULT_SYSTEM, Budget, Turn
from offline_assistants.schemas.messages import MessageCreate, MessageRole
from offline_assistants.schemas.runs import Run
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store import window as truncation
from offline_assistants.testing import load_default_backend, make_engine


@dataclass(frozen=True)
class TruncationOptions:
    sizes: tuple[int, ...] = (1000, 10_000, 100_000)  # thread sizes in messages
    n_ctx: int = 4096  # the window budget is what the executor leaves for history: n_ctx - n_ctx/4 - system - prefix
    reps: int = 300  # repetitions of ours per size
    baseline_reps: tuple[int, ...] = (5, 3, 1)  # of the full re-tokenizing baseline per size (the last repeats)
    newest_reps: int = 20  # of the newest-first baseline
    tail_add: int = 1000  # messages of threads over add_limit appended with add_message after the bulk insert
    add_limit: int = 10_000  # threads up to this size are built entirely with add_message
    quiet_wait: float = 30.0  # before each timed phase, wait up to this long for other processes to go idle
    data_dir: Path | None = None  # where the SQLite database goes (None: a temp dir, removed after)


@dataclass(frozen=True)
class Build:
    """How one thread was built: all through add_message, or bulk then add_message for the tail."""

    seconds: float
    add_ms_per_msg: float | None = None
    bulk_tokenize_s: float | None = None
    bulk_write_s: float | None = None
    tail_add_ms_per_msg: float | None = None


@dataclass(frozen=True)
class SizeResult:
    """One thread size: ours (fresh and steady) against the two baselines, and whether they chose the same."""

    messages: int
    tokens: int
    build: Build
    ours_ms: float
    steady_ms: float
    baseline_ms: float
    ratio: float  # baseline / ours
    newest_first_ms: float
    ratio_vs_newest: float
    window_messages: int
    first_seq: int
    checks_ok: bool  # the baselines chose ours' window, the steady prompt is ours, bulk rows are add_message's


@dataclass(frozen=True)
class TruncationResult:
    """The headline figures are the largest thread's; `sizes` has every thread's."""

    messages: int
    ours_ms: float
    baseline_ms: float
    ratio: float
    scale: float  # ours at the largest size / ours at the smallest
    steady_ms: float
    newest_first_ms: float
    window_ok: bool  # every check passed (bulk rows, baselines' windows, the steady prompt)
    add_message_ms: float | None  # add_message at the largest thread's end, when it was built in bulk
    sizes: tuple[SizeResult, ...] = field(default=())

    def line(self) -> str:
        parts = [f"messages={self.messages}", f"ours_ms={self.ours_ms:.3f}", f"baseline_ms={self.baseline_ms:.0f}",
                 f"ratio={self.ratio:.0f}"]
        for s in self.sizes:
            if s.messages != self.messages:
                label = f"{s.messages // 1000}k" if s.messages % 1000 == 0 else str(s.messages)
                parts.append(f"ours_{label}_ms={s.ours_ms:.3f}")
        parts += [f"scale={self.scale:.2f}", f"steady_ms={self.steady_ms:.3f}",
                  f"newest_first_ms={self.newest_first_ms:.1f}", f"window_ok={'yes' if self.window_ok else 'NO'}"]
        if self.add_message_ms is not None:
            parts.append(f"add_message_ms={self.add_message_ms:.2f}")
        return "RESULT truncation " + " ".join(parts)


def add_messages(engine: Engine, thread_id: str, msgs: list[tuple[MessageRole, str]], label: str) -> float:
    """Append through the public engine path; returns seconds per message."""
    t = time.perf_counter()
    for i, (role, text) in enumerate(msgs):
        engine.threads.add_message(thread_id, MessageCreate(role=role, content=text))
        if (i + 1) % 5000 == 0:
            log(f"  {label}: add_message {i + 1}/{len(msgs)}")
    return (time.perf_counter() - t) / max(1, len(msgs))


def bulk_insert(engine: Engine, thread_id: str, msgs: list[tuple[MessageRole, str]], label: str) -> tuple[float, float]:
    """The rows add_message would store, tokens from backend.encode_message, written by one store call.
    Returns (seconds spent tokenizing/preparing, seconds spent writing)."""
    prepared = []
    t = time.perf_counter()
    for i, (role, text) in enumerate(msgs):
        prepared.append(engine.threads.prepare(thread_id, MessageCreate(role=role, content=text)))
        if (i + 1) % 20000 == 0:
            log(f"  {label}: tokenized {i + 1}/{len(msgs)}")
    prep = time.perf_counter() - t
    t = time.perf_counter()
    engine.store.messages.append_many(thread_id, prepared)
    return prep, time.perf_counter() - t


# --- ours --------------------------------------------------------------------------------------------------------


def ours(engine: Engine, thread_id: str, budget: int, system: list[int], prefix: list[int],
         cut_seq: int = 0) -> tuple[list[int], truncation.Window]:
    window = truncation.choose(engine.store.database, thread_id, budget, strategy={"type": "auto"},
                               cut_seq=cut_seq, encode=engine.backend.encode_message)
    return system + window.tokens + prefix, window


# --- baselines ---------------------------------------------------------------------------------------------------


def _pick(counts: list[int], budget: int) -> int:
    """Index of the oldest message whose suffix fits `budget` (counts oldest..newest); len(counts) if none."""
    s = 0
    first = len(counts)
    for i in range(len(counts) - 1, -1, -1):
        s += counts[i]
        if s > budget:
            break
        first = i
    return first


def baseline_full(engine: Engine, thread_id: str, budget: int, system: list[int],
                  prefix: list[int]) -> tuple[list[int], int]:
    """Re-tokenize the whole history, then apply ours' rule (cut_seq=0: overflow -> newest that fit budget//2)."""
    encode = engine.backend.encode_message
    seqs, toks = [], []
    for message in engine.store.messages.texts(thread_id):
        seqs.append(message.seq)
        toks.append(encode(message.role, message.text))
    if not toks:
        return system + prefix, 0
    counts = [len(t) for t in toks]
    if sum(counts) <= budget:
        first = 0
    else:
        first = _pick(counts, budget // 2)
        if first == len(counts):
            first = _pick(counts, budget)
        if first == len(counts):
            first = len(counts) - 1
    window = [t for tok in toks[first:] for t in tok]
    if len(window) > budget:
        window = window[len(window) - budget:]
    return system + window + prefix, seqs[first]


def baseline_newest(engine: Engine, thread_id: str, budget: int, system: list[int], prefix: list[int],
                    hysteresis: bool = True) -> tuple[list[int], int]:
    """Tokenize newest-first, stop as soon as the window overflows (Ollama-style). With hysteresis, the same rule
    as ours; without, the plain 'as many newest messages as fit the budget'."""
    encode = engine.backend.encode_message
    kept: list[tuple[int, list[int]]] = []
    s = 0
    overflow = False
    half_n = None  # how many newest messages fit budget // 2
    for message in engine.store.messages.texts(thread_id, newest_first=True):
        tok = encode(message.role, message.text)
        if s + len(tok) > budget // 2 and half_n is None:
            half_n = len(kept)
        if s + len(tok) > budget:
            overflow = True
            if not kept:
                kept.append((message.seq, tok))
            break
        s += len(tok)
        kept.append((message.seq, tok))
    if not kept:
        return system + prefix, 0
    if overflow and hysteresis and half_n:
        kept = kept[:half_n]
    kept.reverse()
    window = [t for _, tok in kept for t in tok]
    if len(window) > budget:
        window = window[len(window) - budget:]
    return system + window + prefix, kept[0][0]


# --- the measurement ---------------------------------------------------------------------------------------------


def measure(options: TruncationOptions) -> TruncationResult:
    sizes = list(options.sizes)
    breps = list(options.baseline_reps)
    breps += [breps[-1]] * (len(sizes) - len(breps))
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="oa-bench-trunc-"))
    log("machine:", json.dumps(machine()))
    backend = load_default_backend(n_ctx=options.n_ctx)
    engine = make_engine(data_dir, backend)
    system = backend.encode_system(DEFAULT_SYSTEM)
    prefix = backend.generation_prefix()
    budget = Budget(backend.n_ctx, None, None).prompt_cap()[0] - len(system) - len(prefix)
    log(f"model {backend.name}, n_ctx {backend.n_ctx}, window budget {budget} tokens "
        f"(system {len(system)}, prefix {len(prefix)}), data in {data_dir}")
    try:
        results = _measure(options, engine, sizes, breps, budget, system, prefix)
    finally:
        engine.close()
        backend.close()
        if options.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    big, small = max(results, key=lambda r: r.messages), min(results, key=lambda r: r.messages)
    return TruncationResult(
        messages=big.messages, ours_ms=big.ours_ms, baseline_ms=big.baseline_ms, ratio=big.ratio,
        scale=big.ours_ms / small.ours_ms, steady_ms=big.steady_ms, newest_first_ms=big.newest_first_ms,
        window_ok=all(r.checks_ok for r in results), add_message_ms=big.build.tail_add_ms_per_msg,
        sizes=tuple(results))


def _measure(options: TruncationOptions, engine: Engine, sizes: list[int], breps: list[int], budget: int,
             system: list[int], prefix: list[int]) -> list[SizeResult]:
    conn = engine.store.database.db.conn  # for the window's own seek, checked against the newest-first walk

    # --- 1. build every thread ---
    threads: dict[int, str] = {}
    builds: dict[int, Build] = {}
    rows_ok: dict[int, bool] = {}
    reference_rows = None  # rows add_message stored for seed 1, to check bulk rows against
    for size in sizes:
        msgs = list(conversation(1, size))  # same seed: every thread starts with the same messages
        thread_id = engine.threads.create(ThreadCreate()).id
        log(f"thread of {size} messages: building")
        t_build = time.perf_counter()
        if size <= options.add_limit:
            add_ms = add_messages(engine, thread_id, msgs, f"{size}") * 1e3
            builds[size] = Build(seconds=time.perf_counter() - t_build, add_ms_per_msg=add_ms)
        else:
            head, tail = msgs[: size - options.tail_add], msgs[size - options.tail_add:]
            prep, write = bulk_insert(engine, thread_id, head, f"{size}")
            tail_ms = add_messages(engine, thread_id, tail, f"{size} tail") * 1e3
            builds[size] = Build(seconds=time.perf_counter() - t_build, bulk_tokenize_s=prep, bulk_write_s=write,
                                 tail_add_ms_per_msg=tail_ms)
        log(f"  built in {builds[size].seconds:.1f}s: {engine.store.messages.count(thread_id)} messages, "
            f"{engine.store.messages.total_tokens(thread_id)} tokens; "
            + ", ".join(f"{k} {v:.3g}" for k, v in asdict(builds[size]).items() if v is not None and k != "seconds"))
        # The bulk rows must be what add_message would have stored.
        rows = engine.store.messages.token_rows(thread_id, last_seq=1000)
        rows_ok[size] = True
        if reference_rows is None and size <= options.add_limit:
            reference_rows = rows
        elif reference_rows is not None:
            rows_ok[size] = rows[: len(reference_rows)] == reference_rows[: len(rows)]
            log(f"  rows 1..{min(len(rows), len(reference_rows))} identical to add_message's: {rows_ok[size]}")
        threads[size] = thread_id

    # --- 2. ours, interleaved across sizes (rounds of blocks), so drift in machine speed hits every size alike ---
    wait_quiet(options.quiet_wait, label="ours")
    meter = OtherLoad().start()
    rounds = 10
    per_block = max(1, options.reps // rounds)
    times: dict[int, list[float]] = {n: [] for n in sizes}
    stimes: dict[int, list[float]] = {n: [] for n in sizes}
    prompts: dict[int, list[int]] = {}
    windows: dict[int, truncation.Window] = {}
    steady_same: dict[int, bool] = {}
    turns = {}
    eb = Budget(engine.backend.n_ctx, None, None)
    for size in sizes:
        for _ in range(10):  # warm up
            ours(engine, threads[size], budget, system, prefix)
        prompts[size], windows[size] = ours(engine, threads[size], budget, system, prefix)
        run = Run.model_construct(id="run_bench", thread_id=threads[size], truncation_strategy={"type": "auto"})
        turns[size] = Turn(run=run, tool_resources=None, system=system, prefix=prefix)
    for _ in range(rounds):
        for size in sizes:
            t, _ = timed(functools.partial(ours, engine, threads[size], budget, system, prefix), per_block)
            times[size] += t
        # steady state: the executor's own prompt(), on the cut the fresh choice recorded
        for size in sizes:
            engine.store.threads.set_cut(threads[size], windows[size].cut_seq)
            t, steady_prompt = timed(functools.partial(engine.executor.prompt, turns[size], eb), per_block)
            stimes[size] += t
            steady_same[size] = steady_prompt == prompts[size]
            engine.store.threads.set_cut(threads[size], 0)
    ours_others = meter.stop()
    for size in sizes:
        w = windows[size]
        log(f"ours {size}: {median(times[size]) * 1e3:.3f} ms median of {len(times[size])} (min "
            f"{min(times[size]) * 1e3:.3f}, max {max(times[size]) * 1e3:.3f}); window {w.messages} messages, "
            f"{len(w.tokens)} tokens from seq {w.first_seq}; steady (Executor.prompt, stored cut) "
            f"{median(stimes[size]) * 1e3:.3f} ms, same prompt {steady_same[size]}")
    log(f"other processes during ours: {ours_others:.2f} cores")

    # --- 3. baselines, and the windows they choose ---
    results = []
    for size, brep in zip(sizes, breps):
        thread_id, prompt, window = threads[size], prompts[size], windows[size]
        wait_quiet(options.quiet_wait, label=f"{size} baseline")
        meter = OtherLoad().start()
        log(f"baselines on {size} messages (full re-tokenize x{brep}) ...")
        btimes, (bprompt, bfirst) = timed(functools.partial(baseline_full, engine, thread_id, budget, system, prefix),
                                          brep)
        ntimes, (nprompt, nfirst) = timed(functools.partial(baseline_newest, engine, thread_id, budget, system,
                                                            prefix), options.newest_reps)
        # no-hysteresis check: the newest-first walk filling the whole budget vs ours' seek for the same point
        _, plain_first = baseline_newest(engine, thread_id, budget, system, prefix, hysteresis=False)
        ours_plain = truncation._first_fitting(conn, thread_id, engine.store.messages.total_tokens(thread_id), budget)
        base_others = meter.stop()
        same = (bfirst == window.first_seq and nfirst == window.first_seq and bprompt == prompt and nprompt == prompt
                and plain_first == ours_plain and steady_same[size])
        r = SizeResult(
            messages=size, tokens=engine.store.messages.total_tokens(thread_id), build=builds[size],
            ours_ms=median(times[size]) * 1e3, steady_ms=median(stimes[size]) * 1e3,
            baseline_ms=median(btimes) * 1e3, ratio=median(btimes) / median(times[size]),
            newest_first_ms=median(ntimes) * 1e3, ratio_vs_newest=median(ntimes) / median(times[size]),
            window_messages=window.messages, first_seq=window.first_seq, checks_ok=same and rows_ok[size])
        log(f"  baseline full {r.baseline_ms:.1f} ms (x{brep}), newest-first {r.newest_first_ms:.2f} ms "
            f"(x{options.newest_reps}); first kept seq: ours {window.first_seq}, full {bfirst}, newest-first {nfirst}; "
            f"prompts identical: {bprompt == prompt and nprompt == prompt}; no-hysteresis first seq: ours "
            f"{ours_plain}, newest-first {plain_first}; check {'OK' if same else 'MISMATCH'}; other processes "
            f"{base_others:.2f} cores")
        log(f"size={size} ours_ms={r.ours_ms:.3f} steady_ms={r.steady_ms:.3f} baseline_ms={r.baseline_ms:.1f} "
            f"ratio={r.ratio:.0f} newest_first_ms={r.newest_first_ms:.2f} ratio_vs_newest={r.ratio_vs_newest:.1f}")
        results.append(r)
    return results


# --- the script --------------------------------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def main(argv: list[str] | None = None) -> int:
    d = TruncationOptions()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=_ints, default=d.sizes, help="thread sizes in messages (default 1000,10000,100000)")
    ap.add_argument("--n-ctx", type=int, default=d.n_ctx, help="model context; the window budget is what the "
                    "executor leaves for history: n_ctx - n_ctx/4 - system - generation prefix (default %(default)s)")
    ap.add_argument("--reps", type=int, default=d.reps, help="repetitions of ours per size (default %(default)s)")
    ap.add_argument("--baseline-reps", type=_ints, default=d.baseline_reps,
                    help="repetitions of the full re-tokenizing baseline per size (default 5,3,1)")
    ap.add_argument("--newest-reps", type=int, default=d.newest_reps,
                    help="repetitions of the newest-first baseline")
    ap.add_argument("--tail-add", type=int, default=d.tail_add,
                    help="messages of threads larger than --add-limit appended with add_message after the bulk insert")
    ap.add_argument("--add-limit", type=int, default=d.add_limit,
                    help="threads up to this size are built entirely with add_message (default %(default)s)")
    ap.add_argument("--quiet-wait", type=float, default=d.quiet_wait,
                    help="before each timed phase, wait up to this many seconds for other processes to go idle")
    ap.add_argument("--data-dir", type=Path, default=None, help="where the SQLite database goes (default: a temp dir)")
    args = ap.parse_args(argv)
    result = measure(TruncationOptions(
        sizes=args.sizes, n_ctx=args.n_ctx, reps=args.reps, baseline_reps=args.baseline_reps,
        newest_reps=args.newest_reps, tail_add=args.tail_add, add_limit=args.add_limit, quiet_wait=args.quiet_wait,
        data_dir=args.data_dir))
    print(result.line())
    return 0 if result.window_ok else 1


if __name__ == "__main__":
    sys.exit(main())
