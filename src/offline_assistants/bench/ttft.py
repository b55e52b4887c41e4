"""Time to first token of a streamed run through the real server: cold, follow-up turn, thread switch.

uvicorn on loopback (offline_assistants.testing.serve) and the official `openai` SDK; the time is from just before
`client.beta.threads.runs.create(stream=True)` (the POST) to the first `thread.message.delta` event received.

cold      the first run on a thread with ~2,000 tokens of history (realistic alternating chat messages, the last
          one a user question). Each cold sample is a new thread, so nothing of it is in the model's KV cache.
followup  on the same thread: add a short user message, run again. The engine hands the backend the same prompt
          prefix (stored tokens, stable window) and the thread id as cache key, so llama.cpp evaluates only the
          tokens after the longest common prefix (the previous answer's closing tag, the new message, the prefix).
switch    two warm threads, alternating: each run parks the other thread's KV state and restores this one's
          (LlamaBackend keeps the states of the most recent threads, kv_cache_states=4 by default).

The machine may be shared: before each run the script waits for other processes to go idle, measures the cores
they use during the run, and discards (and measures again) a sample during which they used more than --busy cores.

For each run, the tokens llama.cpp actually evaluated (Finish.prompt_tokens) and the time spent in the backend's
KV-state switch are recorded from a wrapper around the backend instance (diagnostics only; nothing is changed).

measure() returns a TtftResult; the script prints its line: RESULT ttft cold_s=.. followup_s=.. ratio=.. switch_s=..
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline_assistants.bench.common import (
    ModelSetup,
    add_model_options,
    conversation,
    log,
    machine,
    open_bench_backend,
)
from offline_assistants.bench.measure import OtherLoad, median, wait_quiet

FOLLOWUPS = ["Thanks. Can you say that more briefly?", "Why is that?", "Give me one example.",
             "And what about the second point?", "OK. What should I do next?", "Is there a faster way?",
             "Can you check that again?", "Summarize it in one line."]


@dataclass(frozen=True)
class TtftOptions:
    history_tokens: int = 2000  # tokens of history per thread
    cold: int = 3  # cold samples, one new thread each
    followups: int = 5  # follow-up turns on one thread
    switches: int = 6  # runs alternating between two threads
    max_tokens: int = 16  # max_completion_tokens of every run
    model: ModelSetup = field(default_factory=ModelSetup)


@dataclass(frozen=True)
class TtftResult:
    """Medians of the clean samples of each kind (seconds, tokens)."""

    cold_s: float
    followup_s: float
    ratio: float  # follow-up / cold
    switch_s: float
    prompt_tokens: int  # a cold prompt
    cold_evaluated: int
    followup_evaluated: int  # tokens llama.cpp evaluated on a follow-up turn
    switch_evaluated: int
    switch_state_ms: float  # the KV-state switch inside a thread switch
    cold_server_ms: float  # what is neither the KV switch nor llama.cpp: HTTP, run creation, SQLite, events
    followup_server_ms: float
    cold_samples: int
    followup_samples: int
    switch_samples: int
    discarded: int
    backend: str

    def line(self) -> str:
        return (f"RESULT ttft cold_s={self.cold_s:.3f} followup_s={self.followup_s:.3f} ratio={self.ratio:.3f} "
                f"switch_s={self.switch_s:.3f} prompt_tokens={self.prompt_tokens} "
                f"followup_evaluated={self.followup_evaluated} switch_evaluated={self.switch_evaluated} "
                f"switch_state_ms={self.switch_state_ms:.0f} "
                f"samples={self.cold_samples}/{self.followup_samples}/{self.switch_samples} "
                f"discarded={self.discarded} backend={self.backend}")


def measure(options: TtftOptions) -> TtftResult:
    setup = options.model
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

    import openai
    from openai.types.beta.threads import Run

    from offline_assistants.api import create_app
    from offline_assistants.llm.backend import Finish
    from offline_assistants.testing import make_engine, serve

    log("machine:", json.dumps(machine()))
    backend = open_bench_backend(setup)
    log(f"model {backend.name}, n_ctx {backend.n_ctx}, n_threads {backend.n_threads}, {type(backend).__name__}")

    # Diagnostics: wrap the backend instance to see the KV switch time and the tokens actually evaluated.
    probe: dict[str, float] = {}
    original_generate = backend.generate

    def watched_generate(prompt, sampling, **kw):
        probe["prompt_len"] = len(prompt)
        t = time.perf_counter()
        for item in original_generate(prompt, sampling, **kw):
            if isinstance(item, Finish):
                probe["evaluated"] = item.prompt_tokens
                probe["switch_ms"] = item.kv_switch_ms
            elif "model_ms" not in probe:  # backend.generate called -> first token: KV switch + prompt eval + 1 token
                probe["model_ms"] = (time.perf_counter() - t) * 1e3
            yield item

    backend.generate = watched_generate  # type: ignore[method-assign]

    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-ttft-"))
    engine = make_engine(data_dir, backend)
    samples: dict[str, list[dict]] = {"cold": [], "followup": [], "switch": []}
    dropped: list[dict] = []
    with serve(create_app(engine)) as url:
        client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
        assistant = client.beta.assistants.create(
            model="gpt-4o", instructions="You are a helpful assistant. Answer briefly.", temperature=0)

        def new_thread(seed: int) -> str:
            msgs, total = [], 0
            for role, text in conversation(seed, 10_000):
                n = len(backend.encode_message(role, text))
                if total + n > options.history_tokens and role == "user":
                    break
                msgs.append({"role": role, "content": text})
                total += n
            if msgs[-1]["role"] != "user":
                msgs.append({"role": "user", "content": "So, what do you suggest?"})
            # The API takes at most 32 messages with the thread; the rest go through messages.create.
            tid = client.beta.threads.create(messages=msgs[:32]).id  # type: ignore[arg-type]
            for m in msgs[32:]:
                client.beta.threads.messages.create(thread_id=tid, role=m["role"],  # type: ignore[arg-type]
                                                    content=m["content"])
            return tid

        def ttft(kind: str, thread_id: str, label: str) -> bool:
            """One measured run; returns whether it was clean (other processes stayed below --busy cores)."""
            quiet = wait_quiet(setup.quiet_wait, threshold=setup.busy, label=label)
            meter = OtherLoad().start()
            probe.clear()
            t0 = time.perf_counter()
            first = None
            status = None
            for event in client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant.id, stream=True,
                                                         max_completion_tokens=options.max_tokens, temperature=0):
                if event.event == "thread.message.delta" and first is None:
                    first = time.perf_counter() - t0
                elif isinstance(event.data, Run) and event.data.status in (
                        "completed", "incomplete", "failed", "cancelled", "expired"):
                    status = event.data.status
            if first is None:
                raise RuntimeError(f"{label}: no text delta (run {status})")
            others = max(quiet, meter.stop())
            clean = others < setup.busy
            s: dict[str, Any] = {"s": first, "prompt": probe.get("prompt_len"), "evaluated": probe.get("evaluated"),
                 "switch_ms": probe.get("switch_ms", 0.0), "others": others, "kind": kind}
            # what is neither the KV switch nor llama.cpp: HTTP, run creation, SQLite, prompt building, events
            s["server_ms"] = first * 1e3 - probe.get("model_ms", 0.0)
            if kind in samples:
                (samples[kind] if clean else dropped).append(s)
            eval_ms = probe.get("model_ms", 0.0) - s["switch_ms"]
            log(f"{label}: first token after {first * 1e3:.0f} ms; prompt {s['prompt']} tokens, evaluated "
                f"{s['evaluated']}; KV switch {s['switch_ms']:.0f} ms, eval {eval_ms:.0f} ms, "
                f"rest (HTTP, store, prompt, events) {s['server_ms']:.0f} ms; run {status}; "
                f"other processes {others:.2f} cores"
                f"{'' if clean or kind not in samples else ' -> DISCARDED (contention), again'}")
            return clean

        def until_clean(kind: str, attempt, wanted: int) -> None:
            tries = 0
            while len(samples[kind]) < wanted and tries < wanted * setup.max_attempts:
                attempt(tries)
                tries += 1
            if not samples[kind]:
                log(f"WARNING: no clean {kind} sample; using the contaminated ones")
                samples[kind] = [d for d in dropped if d.get("kind") == kind]

        log("warm-up (not measured)")
        ttft("warmup", new_thread(99), "warm-up")

        # cold: a new thread each time; the first clean one then gets the follow-ups
        cold_threads: list[str] = []  # clean first, then the others

        def cold(i: int) -> None:
            tid = new_thread(i + 1)
            if ttft("cold", tid, f"cold (thread seed {i + 1})"):
                cold_threads.insert(0, tid)
            else:
                cold_threads.append(tid)

        until_clean("cold", cold, 1)
        base = cold_threads[0]

        def followup(j: int) -> None:
            client.beta.threads.messages.create(thread_id=base, role="user", content=FOLLOWUPS[j % len(FOLLOWUPS)])
            ttft("followup", base, f"  follow-up {j + 1}")

        until_clean("followup", followup, options.followups)
        until_clean("cold", lambda i: cold(i + 100), options.cold)

        # thread switch: two warm threads alternating (the base thread and the last cold one)
        a, b = base, next((t for t in reversed(cold_threads) if t != base), None) or new_thread(50)
        ttft("warmup", a, "switch warm-up: thread A")
        ttft("warmup", b, "switch warm-up: thread B")

        def switch(k: int) -> None:
            tid = a if k % 2 == 0 else b
            client.beta.threads.messages.create(thread_id=tid, role="user", content=FOLLOWUPS[k % len(FOLLOWUPS)])
            ttft("switch", tid, f"switch {k + 1} to thread {'A' if tid == a else 'B'}")

        until_clean("switch", switch, options.switches)
    engine.close()
    backend.close()
    shutil.rmtree(data_dir, ignore_errors=True)

    def med(kind: str, key: str = "s") -> float:
        return median([x[key] for x in samples[kind]])

    result = TtftResult(
        cold_s=med("cold"), followup_s=med("followup"), ratio=med("followup") / med("cold"), switch_s=med("switch"),
        prompt_tokens=round(med("cold", "prompt")), cold_evaluated=round(med("cold", "evaluated")),
        followup_evaluated=round(med("followup", "evaluated")), switch_evaluated=round(med("switch", "evaluated")),
        switch_state_ms=med("switch", "switch_ms"), cold_server_ms=med("cold", "server_ms"),
        followup_server_ms=med("followup", "server_ms"), cold_samples=len(samples["cold"]),
        followup_samples=len(samples["followup"]), switch_samples=len(samples["switch"]), discarded=len(dropped),
        backend=setup.backend)
    log(f"median: cold {result.cold_s * 1e3:.0f} ms (evaluated {result.cold_evaluated} of {result.prompt_tokens} "
        f"tokens), follow-up {result.followup_s * 1e3:.0f} ms (evaluated {result.followup_evaluated}), switch "
        f"{result.switch_s * 1e3:.0f} ms (evaluated {result.switch_evaluated}, of which KV switch "
        f"{result.switch_state_ms:.0f} ms); outside the model (HTTP, store, prompt, events): cold "
        f"{result.cold_server_ms:.0f} ms, follow-up {result.followup_server_ms:.0f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    d = TtftOptions()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history-tokens", type=int, default=d.history_tokens,
                    help="tokens of history per thread (default %(default)s)")
    ap.add_argument("--cold", type=int, default=d.cold, help="cold samples, one new thread each (default %(default)s)")
    ap.add_argument("--followups", type=int, default=d.followups,
                    help="follow-up turns on one thread (default %(default)s)")
    ap.add_argument("--switches", type=int, default=d.switches,
                    help="runs alternating between two threads (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=d.max_tokens,
                    help="max_completion_tokens of every run (default %(default)s)")
    add_model_options(ap, unit="sample")
    args = ap.parse_args(argv)
    result = measure(TtftOptions(history_tokens=args.history_tokens, cold=args.cold, followups=args.followups,
                                 switches=args.switches, max_tokens=args.max_tokens, model=ModelSetup.from_args(args)))
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
