"""Choosing a thread's context window: ours (stored per-message token counts + running sums, O(log N) seek)
against a stateless baseline that re-tokenizes the history on every turn.

Threads of 1,000, 10,000 and 100,000 realistic chat messages (alternating user/assistant) are stored through the
real store, with token counts from the real model's tokenizer (`backend.encode_message`: the GGUF's own chat
template around the message, then its tokenizer).

* The 1k and 10k threads are built by calling `engine.threads.add_message` once per message (timed).
* The 100k thread: its first messages are bulk-inserted (one executemany) with exactly the columns
  `MessageStore.insert` computes (seq, n_tokens, cum_tokens, the packed `tokens` blob from `store.messages.pack`),
  the values and tokens coming from `Threads.prepare`, i.e. from `backend.encode_message`; its last messages are
  appended with `add_message` (timed, at the 100k end). The bulk rows are checked against the rows `add_message`
  stored for the same texts in the 1k thread.

Timed per thread, median over many repetitions (ours is timed in rounds interleaving the sizes, so a drift in the
machine's speed, which is large on a shared VM, hits every size alike):
  ours      truncation.choose(auto, cut_seq=0 as on a fresh thread) + system + window + generation prefix;
  steady    Executor._prompt on the thread's stored cut (what every later turn runs: thread row, choose, concat);
  baseline  "full": read every message, render it with the chat template and tokenize it (backend.encode_message),
            then choose the window with the same rule as ours (a stateless trimmer handed the whole history, in
            the way LangChain's trim_messages counts the full message list with the model's tokenizer);
  newest    "newest-first": tokenize from the newest message back, stopping as soon as the window overflows
            (Ollama-style; same rule as ours), for information.

The rule ours applies on overflow (hysteresis): with cut_seq=0 on a fresh long thread the history overflows, so
the window is cut back to the newest messages that fit in HALF the budget (the cut is then kept for later turns).
Both baselines apply the same rule, so their chosen first message must equal ours; a second check compares the
plain "fill the whole budget" point (no hysteresis) of the newest-first walk with ours' `_first_fitting`.

Ends with one stdout line: RESULT truncation messages=.. ours_ms=.. baseline_ms=.. ratio=.. ours_1k_ms=.. ...
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal, cast

from offline_assistants.bench.common import OtherLoad, conversation, log, machine, median, timed, wait_quiet

from offline_assistants.store import window as truncation
from offline_assistants.engine.turn import DEFAULT_SYSTEM, Budget, Turn
from offline_assistants.schemas.runs import Run
from offline_assistants.schemas.messages import MessageCreate, text_of
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store.db import dumps, loads
from offline_assistants.store.messages import JSON_FIELDS, pack
from offline_assistants.testing import load_default_backend, make_engine

Role = Literal["user", "assistant"]


def add_messages(engine, thread_id: str, msgs: list[tuple[str, str]], label: str) -> float:
    """Append through the public engine path; returns seconds per message."""
    t = time.perf_counter()
    for i, (role, text) in enumerate(msgs):
        engine.threads.add_message(thread_id, MessageCreate(role=cast(Role, role), content=text))
        if (i + 1) % 5000 == 0:
            log(f"  {label}: add_message {i + 1}/{len(msgs)}")
    return (time.perf_counter() - t) / max(1, len(msgs))


def bulk_insert(engine, thread_id: str, msgs: list[tuple[str, str]], label: str) -> tuple[float, float]:
    """Insert rows with the columns MessageStore.insert computes, tokens from backend.encode_message.
    Returns (seconds spent tokenizing/preparing, seconds spent writing)."""
    db = engine.store.database
    seq = db.query_one("SELECT next_seq FROM threads WHERE id = ?", (thread_id,))["next_seq"]
    last = db.query_one("SELECT cum_tokens FROM messages WHERE thread_id = ? ORDER BY seq DESC LIMIT 1", (thread_id,))
    cum = last["cum_tokens"] if last else 0
    rows = []
    names = None
    prepare = engine.threads.prepare
    t = time.perf_counter()
    for i, (role, text) in enumerate(msgs):
        values, tokens = prepare(thread_id, MessageCreate(role=cast(Role, role), content=text))
        row = {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()}
        cum += len(tokens)
        row.update(seq=seq, n_tokens=len(tokens), cum_tokens=cum, tokens=pack(tokens))
        seq += 1
        names = names or list(row)
        rows.append([row[k] for k in names])
        if (i + 1) % 20000 == 0:
            log(f"  {label}: tokenized {i + 1}/{len(msgs)}")
    prep = time.perf_counter() - t
    t = time.perf_counter()
    with db.write() as w:
        columns = names or []
        w.conn.executemany(f"INSERT INTO messages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                           rows)
        w.execute("UPDATE threads SET next_seq = ? WHERE id = ?", (seq, thread_id))
    return prep, time.perf_counter() - t


# --- ours --------------------------------------------------------------------------------------------------------


def ours(engine, thread_id: str, budget: int, system: list[int], prefix: list[int], cut_seq: int = 0):
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


def baseline_full(engine, thread_id: str, budget: int, system: list[int], prefix: list[int]):
    """Re-tokenize the whole history, then apply ours' rule (cut_seq=0: overflow -> newest that fit budget//2)."""
    encode = engine.backend.encode_message
    conn = engine.store.database.db.conn
    seqs, toks = [], []
    for seq, role, content, status in conn.execute(
        "SELECT seq, role, content, status FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,)
    ):
        if status == "in_progress":
            continue
        seqs.append(seq)
        toks.append(encode(role, text_of(loads(content))))
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


def baseline_newest(engine, thread_id: str, budget: int, system: list[int], prefix: list[int],
                    hysteresis: bool = True):
    """Tokenize newest-first, stop as soon as the window overflows (Ollama-style). With hysteresis, the same rule
    as ours; without, the plain 'as many newest messages as fit the budget'."""
    encode = engine.backend.encode_message
    conn = engine.store.database.db.conn
    kept: list[tuple[int, list[int]]] = []
    s = 0
    overflow = False
    half_n = None  # how many newest messages fit budget // 2
    for seq, role, content, status in conn.execute(
        "SELECT seq, role, content, status FROM messages WHERE thread_id = ? ORDER BY seq DESC", (thread_id,)
    ):
        if status == "in_progress":
            continue
        tok = encode(role, text_of(loads(content)))
        if s + len(tok) > budget // 2 and half_n is None:
            half_n = len(kept)
        if s + len(tok) > budget:
            overflow = True
            if not kept:
                kept.append((seq, tok))
            break
        s += len(tok)
        kept.append((seq, tok))
    if not kept:
        return system + prefix, 0
    if overflow and hysteresis and half_n:
        kept = kept[:half_n]
    kept.reverse()
    window = [t for _, tok in kept for t in tok]
    if len(window) > budget:
        window = window[len(window) - budget:]
    return system + window + prefix, kept[0][0]


# --- main --------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="thread sizes in messages (default %(default)s)")
    ap.add_argument("--n-ctx", type=int, default=4096, help="model context; the window budget is what the executor "
                    "leaves for history: n_ctx - n_ctx/4 - system - generation prefix (default %(default)s)")
    ap.add_argument("--reps", type=int, default=300, help="repetitions of ours per size (default %(default)s)")
    ap.add_argument("--baseline-reps", default="5,3,1",
                    help="repetitions of the full re-tokenizing baseline per size (default %(default)s)")
    ap.add_argument("--newest-reps", type=int, default=20, help="repetitions of the newest-first baseline")
    ap.add_argument("--tail-add", type=int, default=1000,
                    help="messages of threads larger than --add-limit appended with add_message after the bulk insert")
    ap.add_argument("--add-limit", type=int, default=10000,
                    help="threads up to this size are built entirely with add_message (default %(default)s)")
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="before each timed phase, wait up to this many seconds for other processes to go idle")
    ap.add_argument("--data-dir", type=Path, default=None, help="where the SQLite database goes (default: a temp dir)")
    args = ap.parse_args(argv)

    sizes = [int(x) for x in args.sizes.split(",")]
    breps = [int(x) for x in args.baseline_reps.split(",")]
    breps += [breps[-1]] * (len(sizes) - len(breps))
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="oa-bench-trunc-"))
    temporary = args.data_dir is None
    log("machine:", json.dumps(machine()))
    backend = load_default_backend(n_ctx=args.n_ctx)
    engine = make_engine(data_dir, backend)
    system = backend.encode_system(DEFAULT_SYSTEM)
    prefix = backend.generation_prefix()
    budget = Budget(backend.n_ctx, None, None).prompt_cap()[0] - len(system) - len(prefix)
    log(f"model {backend.name}, n_ctx {backend.n_ctx}, window budget {budget} tokens "
        f"(system {len(system)}, prefix {len(prefix)}), data in {data_dir}")

    results: dict[int, dict] = {}
    threads: dict[int, tuple[str, int]] = {}  # size -> (thread id, total tokens)
    checks_ok = True
    conn = engine.store.database.db.conn

    # --- 1. build every thread ---
    reference_rows = None  # rows add_message stored for seed 1, to check bulk rows against
    for size in sizes:
        msgs = list(conversation(1, size))  # same seed: every thread starts with the same messages
        thread_id = engine.threads.create(ThreadCreate()).id
        log(f"thread of {size} messages: building")
        t_build = time.perf_counter()
        build: dict[str, float] = {}
        if size <= args.add_limit:
            build["add_ms_per_msg"] = add_messages(engine, thread_id, msgs, f"{size}") * 1e3
        else:
            head, tail = msgs[: size - args.tail_add], msgs[size - args.tail_add:]
            prep, write = bulk_insert(engine, thread_id, head, f"{size}")
            build["bulk_tokenize_s"] = prep
            build["bulk_write_s"] = write
            build["tail_add_ms_per_msg"] = add_messages(engine, thread_id, tail, f"{size} tail") * 1e3
        build["build_s"] = time.perf_counter() - t_build
        total = conn.execute("SELECT max(cum_tokens), count(*) FROM messages WHERE thread_id = ?", (thread_id,)).fetchone()
        log(f"  built in {build['build_s']:.1f}s: {total[1]} messages, {total[0]} tokens; "
            + ", ".join(f"{k} {v:.3g}" for k, v in build.items()))
        # The bulk rows must be what add_message would have stored.
        rows = conn.execute("SELECT seq, role, content, n_tokens, cum_tokens, tokens FROM messages WHERE thread_id = ? "
                            "AND seq <= 1000 ORDER BY seq", (thread_id,)).fetchall()
        if reference_rows is None and size <= args.add_limit:
            reference_rows = rows
        elif reference_rows is not None:
            same = rows[: len(reference_rows)] == reference_rows[: len(rows)]
            checks_ok &= same
            log(f"  rows 1..{min(len(rows), len(reference_rows))} identical to add_message's: {same}")
        threads[size] = (thread_id, total[0])
        results[size] = dict(build)

    # --- 2. ours, interleaved across sizes (rounds of blocks), so drift in machine speed hits every size alike ---
    wait_quiet(args.quiet_wait, label="ours")
    meter = OtherLoad().start()
    rounds = 10
    per_block = max(1, args.reps // rounds)
    times: dict[int, list[float]] = {n: [] for n in sizes}
    stimes: dict[int, list[float]] = {n: [] for n in sizes}
    turns = {}
    eb = Budget(backend.n_ctx, None, None)
    for size in sizes:
        thread_id = threads[size][0]
        for _ in range(10):  # warm up
            ours(engine, thread_id, budget, system, prefix)
        prompt, window = ours(engine, thread_id, budget, system, prefix)
        results[size].update(prompt=prompt, window=window)
        run = Run.model_construct(id="run_bench", thread_id=thread_id, truncation_strategy={"type": "auto"})
        turns[size] = Turn(run=run, tool_resources=None, system=system, prefix=prefix)
    for _ in range(rounds):
        for size in sizes:
            thread_id = threads[size][0]
            t, _ = timed(functools.partial(ours, engine, thread_id, budget, system, prefix), per_block)
            times[size] += t
        # steady state: the executor's own prompt(), on the cut the fresh choice recorded
        for size in sizes:
            thread_id = threads[size][0]
            engine.store.threads.set_cut(thread_id, results[size]["window"].cut_seq)
            t, steady_prompt = timed(functools.partial(engine.executor.prompt, turns[size], eb), per_block)
            stimes[size] += t
            results[size]["steady_same"] = steady_prompt == results[size]["prompt"]
            engine.store.threads.set_cut(thread_id, 0)
    ours_others = meter.stop()
    for size in sizes:
        r = results[size]
        r["ours_ms"] = median(times[size]) * 1e3
        r["steady_ms"] = median(stimes[size]) * 1e3
        w = r["window"]
        log(f"ours {size}: {r['ours_ms']:.3f} ms median of {len(times[size])} (min {min(times[size]) * 1e3:.3f}, max "
            f"{max(times[size]) * 1e3:.3f}); window {w.messages} messages, {len(w.tokens)} tokens from seq "
            f"{w.first_seq}; steady (Executor._prompt, stored cut) {r['steady_ms']:.3f} ms, same prompt "
            f"{r['steady_same']}")
    log(f"other processes during ours: {ours_others:.2f} cores")

    # --- 3. baselines, and the windows they choose ---
    for size, brep in zip(sizes, breps):
        thread_id, total_tokens = threads[size]
        r = results[size]
        prompt, window = r["prompt"], r["window"]
        wait_quiet(args.quiet_wait, label=f"{size} baseline")
        meter = OtherLoad().start()
        log(f"baselines on {size} messages (full re-tokenize x{brep}) ...")
        btimes, (bprompt, bfirst) = timed(functools.partial(baseline_full, engine, thread_id, budget, system, prefix),
                                          brep)
        baseline_ms = median(btimes) * 1e3
        ntimes, (nprompt, nfirst) = timed(functools.partial(baseline_newest, engine, thread_id, budget, system, prefix),
                                          args.newest_reps)
        newest_ms = median(ntimes) * 1e3
        # no-hysteresis check: the newest-first walk filling the whole budget vs ours' seek for the same point
        _, plain_first = baseline_newest(engine, thread_id, budget, system, prefix, hysteresis=False)
        ours_plain = truncation._first_fitting(conn, thread_id, total_tokens, budget)
        base_others = meter.stop()
        ok = (bfirst == window.first_seq and nfirst == window.first_seq and bprompt == prompt and nprompt == prompt
              and plain_first == ours_plain and r["steady_same"])
        checks_ok &= ok
        log(f"  baseline full {baseline_ms:.1f} ms (x{brep}), newest-first {newest_ms:.2f} ms (x{args.newest_reps}); "
            f"first kept seq: ours {window.first_seq}, full {bfirst}, newest-first {nfirst}; prompts identical: "
            f"{bprompt == prompt and nprompt == prompt}; no-hysteresis first seq: ours {ours_plain}, "
            f"newest-first {plain_first}; check {'OK' if ok else 'MISMATCH'}; other processes {base_others:.2f} cores")
        r.update(baseline_ms=baseline_ms, newest_ms=newest_ms, ratio=baseline_ms / r["ours_ms"])
        print(f"size={size} ours_ms={r['ours_ms']:.3f} steady_ms={r['steady_ms']:.3f} baseline_ms={baseline_ms:.1f} "
              f"ratio={baseline_ms / r['ours_ms']:.0f} newest_first_ms={newest_ms:.2f} "
              f"ratio_vs_newest={newest_ms / r['ours_ms']:.1f}", file=sys.stderr, flush=True)

    engine.close()
    if temporary:
        shutil.rmtree(data_dir, ignore_errors=True)
    big, small = max(sizes), min(sizes)
    r = results[big]
    parts = [f"messages={big}", f"ours_ms={r['ours_ms']:.3f}", f"baseline_ms={r['baseline_ms']:.0f}",
             f"ratio={r['ratio']:.0f}"]
    for size in sizes:
        if size != big:
            label = f"{size // 1000}k" if size % 1000 == 0 else str(size)
            parts.append(f"ours_{label}_ms={results[size]['ours_ms']:.3f}")
    parts += [f"scale={r['ours_ms'] / results[small]['ours_ms']:.2f}", f"steady_ms={r['steady_ms']:.3f}",
              f"newest_first_ms={r['newest_ms']:.1f}", f"window_ok={'yes' if checks_ok else 'NO'}"]
    if "tail_add_ms_per_msg" in r:
        parts.append(f"add_message_ms={r['tail_add_ms_per_msg']:.2f}")
    print("RESULT truncation " + " ".join(parts))
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
