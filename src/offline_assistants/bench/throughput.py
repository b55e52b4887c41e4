"""Prompt and generation speed of a streamed run through the real server, against raw llama-cpp-python on the
same GGUF with the same threads, in the same process, alternating.

ours: uvicorn on loopback (offline_assistants.testing.serve), the official `openai` SDK,
      `client.beta.threads.runs.create(stream=True)`, temperature 0, max_completion_tokens fixed.
      prompt tok/s  = run usage prompt_tokens / (POST sent -> first thread.message.delta received)
      gen tok/s     = (usage completion_tokens - 1) / (first delta -> last delta)
raw:  llama_cpp.Llama(same file, n_ctx, n_threads=N, n_threads_batch=N), Llama.generate over the very same prompt
      tokens with the same sampling (greedy: temp 0, top_k 1, min_p 0, and the repeat_penalty the server applies
      to this model, 1.1 for SmolLM2), stopped after the same
      number of tokens ours produced; nothing else (no detokenizing, no HTTP).
      prompt tok/s  = prompt tokens / (generate() called -> first token)
      gen tok/s     = (tokens - 1) / (first token -> last token)

Ours is the server as `offline-assistants serve` runs it: the model in its own process (--backend process, the
default), or, for a before/after comparison, in the server's process (--backend in-process). Raw uses the same
--cpu-repack verdict as ours.

Ours' prompt phase includes the backend's KV-state switch: a new thread parks the previous thread's KV state
first. Its time comes back in Finish.kv_switch_ms (diagnostics only) and is reported, and the prompt rate without
it is reported too (prompt_ratio_without_kv_switch).

The machine may be shared: before each measurement the script waits for other processes to go idle, measures the
cores they use during it, and discards (and repeats with a new prompt) a repetition during which they used more
than --busy cores.

Every measured prompt is cold on both sides: each repetition has its own thread and its own text (~1,000 tokens),
and the system prompt starts with a per-repetition number, so only the chat template's 3-token header can match
what the previous prompt left in either KV cache. Raw runs the same prompts in the same order, so both see the same
prefix reuse. The greedy outputs must agree token for token: checked, as a proof the prompts are the same.

measure() returns a ThroughputResult; the script prints its line: RESULT throughput ours_tok_s=.. raw_tok_s=..
ratio=.. ours_prompt_tok_s=.. ...
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline_assistants.bench.common import (
    ModelSetup,
    add_model_options,
    chat_message,
    log,
    machine,
    open_bench_backend,
)
from offline_assistants.bench.measure import OtherLoad, median, wait_quiet


@dataclass(frozen=True)
class ThroughputOptions:
    reps: int = 5  # measured repetitions of each side
    prompt_tokens: int = 1000  # approximate prompt size
    max_tokens: int = 200  # max_completion_tokens
    model: ModelSetup = field(default_factory=ModelSetup)


@dataclass(frozen=True)
class Repetition:
    """One repetition: ours and raw on the same prompt."""

    prompt: int
    completion: int
    ours_prompt_tok_s: float
    raw_prompt_tok_s: float
    ours_tok_s: float
    raw_tok_s: float
    ours_first_s: float
    raw_first_s: float
    switch_ms: float  # the backend's KV-state switch inside ours' prompt phase
    ours_prompt_noswitch_tok_s: float
    ours_server_tok_s: float  # generation rate seen by the worker (tokens from the backend)
    others: float  # cores other processes used meanwhile
    same_prompt: bool
    same_text: bool
    clean: bool


@dataclass(frozen=True)
class ThroughputResult:
    """Medians over the clean repetitions (all of them when none was clean)."""

    ours_tok_s: float
    raw_tok_s: float
    ratio: float
    ours_prompt_tok_s: float
    raw_prompt_tok_s: float
    prompt_ratio: float
    prompt_ratio_without_kv_switch: float
    prompt_tokens: int
    completion_tokens: int
    ours_first_s: float
    raw_first_s: float
    kv_switch_ms: float
    server_tok_s: float
    reps: int
    discarded: int
    threads: int
    same_output: int  # repetitions whose greedy outputs were identical (of reps)
    same_prompt: bool  # every repetition gave both sides the same prompt
    backend: str

    def line(self) -> str:
        return (f"RESULT throughput ours_tok_s={self.ours_tok_s:.1f} raw_tok_s={self.raw_tok_s:.1f} "
                f"ratio={self.ratio:.3f} ours_prompt_tok_s={self.ours_prompt_tok_s:.0f} "
                f"raw_prompt_tok_s={self.raw_prompt_tok_s:.0f} prompt_ratio={self.prompt_ratio:.3f} "
                f"prompt_ratio_without_kv_switch={self.prompt_ratio_without_kv_switch:.3f} "
                f"prompt_tokens={self.prompt_tokens} completion_tokens={self.completion_tokens} reps={self.reps} "
                f"discarded={self.discarded} threads={self.threads} same_output={self.same_output}/{self.reps} "
                f"backend={self.backend}")


def long_user_text(rep: int, target_tokens: int, encode) -> str:
    """A user message of about target_tokens: pasted notes, then a request to write at length."""
    rng = random.Random(1000 + rep)
    ask = ("\n\nUsing the notes above, write a very long and detailed report: a title, an introduction, then "
           "ten numbered sections of several paragraphs each. Do not stop early.")
    parts = [f"Here are my notes from project {rep}:"]
    while len(encode("user", "\n".join(parts) + ask)) < target_tokens:
        parts.append(chat_message(rng, "assistant"))
    return "\n".join(parts) + ask


def run_ours(client, assistant_id: str, thread_id: str, max_tokens: int) -> dict:
    t0 = time.perf_counter()
    stream = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True,
                                             max_completion_tokens=max_tokens, temperature=0)
    first = last = None
    text = []
    run = None
    for event in stream:
        if event.event == "thread.message.delta":
            now = time.perf_counter()
            first = first or now
            last = now
            text.append(event.data.delta.content[0].text.value)
        elif event.event in ("thread.run.completed", "thread.run.incomplete", "thread.run.failed"):
            run = event.data
    assert run is not None and run.usage is not None, "the run did not finish"
    assert first is not None and last is not None, "no text streamed"
    if run.status == "failed":
        raise RuntimeError(f"run failed: {run.last_error}")
    u = run.usage
    return {"t_first": first - t0, "t_gen": last - first, "prompt": u.prompt_tokens,
            "completion": u.completion_tokens, "text": "".join(text), "status": run.status}


def run_raw(llm, tokens: list[int], n: int, repeat_penalty: float) -> dict:
    eos = llm.token_eos()
    out = []
    t0 = time.perf_counter()
    first = last = None
    for token in llm.generate(tokens, temp=0.0, top_p=1.0, top_k=1, min_p=0.0, repeat_penalty=repeat_penalty):
        now = time.perf_counter()
        first = first or now
        if token == eos:
            break
        out.append(token)
        last = now
        if len(out) >= n:
            break
    assert first is not None and last is not None, "nothing generated"
    return {"t_first": first - t0, "t_gen": last - first, "prompt": len(tokens), "completion": len(out),
            "tokens": out}


def measure(options: ThroughputOptions) -> ThroughputResult:
    setup = options.model
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

    import llama_cpp
    import openai

    from offline_assistants.api import create_app
    from offline_assistants.llm.backend import Piece
    from offline_assistants.llm.llama_params import model_params
    from offline_assistants.testing import make_engine, serve

    log("machine:", json.dumps(machine()))
    backend = open_bench_backend(setup)
    threads = backend.n_threads
    # On a GPU raw is offloaded as ours is, with flash attention on as ours has it (llm/batch.py); on a CPU it
    # keeps llama-cpp-python's default attention, the baseline of the recorded figures.
    gpu_layers = backend.gpu_layers
    with model_params(backend.cpu_repack):  # the same repack setting as ours
        raw = llama_cpp.Llama(str(backend.path), n_ctx=setup.n_ctx, n_threads=threads, n_threads_batch=threads,
                              n_gpu_layers=gpu_layers, flash_attn=gpu_layers != 0, seed=0, verbose=False)
    penalty = backend.sampling_defaults.repeat_penalty  # the server applies the model's; raw the same
    log(f"model {backend.path.name}, n_ctx {setup.n_ctx}, n_threads = n_threads_batch = {threads} on both sides, "
        f"repeat_penalty {penalty} on both sides, "
        f"cpu repack {'on' if backend.cpu_repack else 'off'} on both sides, GPU layers {gpu_layers} on both sides, "
        f"ours {type(backend).__name__}")

    # Diagnostics only: the backend's KV-state switch (inside the measured prompt phase, reported by Finish), and
    # when the worker got each token from the backend (server side, before events and HTTP).
    switch_ms: list[float] = []
    piece_times: list[float] = []
    original_generate = backend.generate

    def watched_generate(prompt, sampling, **kw):
        for item in original_generate(prompt, sampling, **kw):
            if isinstance(item, Piece):
                piece_times.append(time.perf_counter())
            else:
                switch_ms.append(item.kv_switch_ms)
            yield item

    backend.generate = watched_generate  # type: ignore[method-assign]

    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-tput-"))
    engine = make_engine(data_dir, backend)
    rows: list[Repetition] = []
    with serve(create_app(engine)) as url:
        client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)

        def prepare(rep: int) -> tuple[str, str, list[int]]:
            instructions = (f"Session {rep}. You are a thorough technical writer. You always answer at great "
                            "length, with many sections and details.")
            text = long_user_text(rep, options.prompt_tokens, backend.encode_message)
            assistant = client.beta.assistants.create(model="gpt-4o", instructions=instructions, temperature=0)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
            tokens = backend.encode_system(instructions) + backend.encode_message("user", text) + \
                backend.generation_prefix()
            return assistant.id, thread.id, tokens

        log("warm-up (not measured)")
        a, t, toks = prepare(-1)
        w = run_ours(client, a, t, 20)
        run_raw(raw, toks, 20, penalty)
        log(f"  warm-up: ours prompt {w['prompt']} tokens in {w['t_first']:.2f}s")

        rep = 0
        while sum(r.clean for r in rows) < options.reps and rep < options.reps * setup.max_attempts:
            assistant_id, thread_id, tokens = prepare(rep)
            order = ["ours", "raw"] if rep % 2 == 0 else ["raw", "ours"]
            res: dict[str, Any] = {}
            for side in order:
                quiet = wait_quiet(setup.quiet_wait, threshold=setup.busy, label=f"rep {rep} {side}")
                meter = OtherLoad().start()
                if side == "ours":
                    n_sw = len(switch_ms)
                    piece_times.clear()
                    r = run_ours(client, assistant_id, thread_id, options.max_tokens)
                    r["switch_ms"] = sum(switch_ms[n_sw:])
                    r["server_tok_s"] = (len(piece_times) - 1) / (piece_times[-1] - piece_times[0])
                else:
                    n = res["ours"]["completion"] if "ours" in res else options.max_tokens
                    r = run_raw(raw, tokens, n, penalty)
                r["others"] = max(quiet, meter.stop())
                res[side] = r
            # When raw ran first it stopped at max_tokens or EOS, as ours does: with greedy decoding on the same
            # prompt both produce the same tokens, so the counts match (checked below through the texts).
            o, r = res["ours"], res["raw"]
            raw_text = raw.detokenize(r["tokens"]).decode("utf-8", "replace")
            others = max(o["others"], r["others"])
            row = Repetition(
                prompt=o["prompt"], completion=o["completion"],
                ours_prompt_tok_s=o["prompt"] / o["t_first"], raw_prompt_tok_s=r["prompt"] / r["t_first"],
                ours_tok_s=(o["completion"] - 1) / o["t_gen"], raw_tok_s=(r["completion"] - 1) / r["t_gen"],
                ours_first_s=o["t_first"], raw_first_s=r["t_first"], switch_ms=o["switch_ms"],
                ours_prompt_noswitch_tok_s=o["prompt"] / (o["t_first"] - o["switch_ms"] / 1e3),
                ours_server_tok_s=o["server_tok_s"], others=others,
                same_prompt=o["prompt"] == r["prompt"] == len(tokens), same_text=raw_text == o["text"],
                clean=others < setup.busy)
            rows.append(row)
            log(f"rep {rep} ({'/'.join(order)}): prompt {row.prompt} tok, generated {row.completion} tok "
                f"(run {o['status']}); prompt tok/s ours {row.ours_prompt_tok_s:.0f} raw "
                f"{row.raw_prompt_tok_s:.0f} (first token ours {o['t_first'] * 1e3:.0f} ms incl. KV switch "
                f"{o['switch_ms']:.0f} ms, raw {r['t_first'] * 1e3:.0f} ms); gen tok/s ours {row.ours_tok_s:.1f} "
                f"(server side {o['server_tok_s']:.1f}) raw {row.raw_tok_s:.1f}; same prompt {row.same_prompt}, "
                f"same text {row.same_text}; other processes {row.others:.2f} cores -> "
                f"{'kept' if row.clean else 'DISCARDED (contention)'}")
            rep += 1
    engine.close()
    backend.close()
    shutil.rmtree(data_dir, ignore_errors=True)

    used = [r for r in rows if r.clean]
    if not used:
        log(f"WARNING: no repetition ran without other processes using >= {setup.busy} cores; using all of them")
        used = rows

    def med(figure: Callable[[Repetition], float]) -> float:
        return median([figure(r) for r in used])

    ours_tok_s, raw_tok_s = med(lambda r: r.ours_tok_s), med(lambda r: r.raw_tok_s)
    ours_p, raw_p = med(lambda r: r.ours_prompt_tok_s), med(lambda r: r.raw_prompt_tok_s)
    noswitch = med(lambda r: r.ours_prompt_noswitch_tok_s)
    result = ThroughputResult(
        ours_tok_s=ours_tok_s, raw_tok_s=raw_tok_s, ratio=ours_tok_s / raw_tok_s, ours_prompt_tok_s=ours_p,
        raw_prompt_tok_s=raw_p, prompt_ratio=ours_p / raw_p, prompt_ratio_without_kv_switch=noswitch / raw_p,
        prompt_tokens=int(med(lambda r: r.prompt)), completion_tokens=int(med(lambda r: r.completion)),
        ours_first_s=med(lambda r: r.ours_first_s), raw_first_s=med(lambda r: r.raw_first_s),
        kv_switch_ms=med(lambda r: r.switch_ms), server_tok_s=med(lambda r: r.ours_server_tok_s),
        reps=len(used), discarded=len(rows) - len(used), threads=threads,
        same_output=sum(r.same_text for r in used), same_prompt=all(r.same_prompt for r in rows),
        backend=setup.backend)
    log(f"median over {result.reps} reps: gen ours {ours_tok_s:.1f} raw {raw_tok_s:.1f} tok/s; prompt ours "
        f"{ours_p:.0f} raw {raw_p:.0f} tok/s; first token ours {result.ours_first_s * 1e3:.0f} ms raw "
        f"{result.raw_first_s * 1e3:.0f} ms; KV switch in ours' prompt phase {result.kv_switch_ms:.0f} ms; "
        f"outputs identical in {result.same_output}/{result.reps}")
    log(f"generation rate seen inside the server (worker receiving tokens from llama.cpp): "
        f"{result.server_tok_s:.1f} tok/s")
    log(f"ours' prompt rate without the KV-state switch: {noswitch:.0f} tok/s ({noswitch / raw_p:.3f}x raw)")
    return result


def main(argv: list[str] | None = None) -> int:
    d = ThroughputOptions()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=d.reps, help="measured repetitions of each side (default %(default)s)")
    ap.add_argument("--prompt-tokens", type=int, default=d.prompt_tokens,
                    help="approximate prompt size (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=d.max_tokens, help="max_completion_tokens (default %(default)s)")
    add_model_options(ap, unit="repetition")
    args = ap.parse_args(argv)
    result = measure(ThroughputOptions(reps=args.reps, prompt_tokens=args.prompt_tokens, max_tokens=args.max_tokens,
                                       model=ModelSetup.from_args(args)))
    print(result.line())
    return 0 if result.same_prompt else 1


if __name__ == "__main__":
    sys.exit(main())
