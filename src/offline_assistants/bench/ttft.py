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

Ends with one stdout line: RESULT ttft cold_s=.. followup_s=.. ratio=.. switch_s=..
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from offline_assistants.bench.common import OtherLoad, add_model_options, conversation, log, machine, median, open_bench_backend, wait_quiet

FOLLOWUPS = ["Thanks. Can you say that more briefly?", "Why is that?", "Give me one example.",
             "And what about the second point?", "OK. What should I do next?", "Is there a faster way?",
             "Can you check that again?", "Summarize it in one line."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history-tokens", type=int, default=2000, help="tokens of history per thread (default %(default)s)")
    ap.add_argument("--cold", type=int, default=3, help="cold samples, one new thread each (default %(default)s)")
    ap.add_argument("--followups", type=int, default=5, help="follow-up turns on one thread (default %(default)s)")
    ap.add_argument("--switches", type=int, default=6, help="runs alternating between two threads (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=16, help="max_completion_tokens of every run (default %(default)s)")
    add_model_options(ap, unit="sample")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

    import openai

    from offline_assistants.api import create_app
    from offline_assistants.llm.backend import Finish
    from offline_assistants.testing import make_engine, serve

    log("machine:", json.dumps(machine()))
    backend = open_bench_backend(args)
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
                if total + n > args.history_tokens and role == "user":
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
            quiet = wait_quiet(args.quiet_wait, threshold=args.busy, label=label)
            meter = OtherLoad().start()
            probe.clear()
            t0 = time.perf_counter()
            first = None
            status = None
            for event in client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant.id, stream=True,
                                                         max_completion_tokens=args.max_tokens, temperature=0):
                if event.event == "thread.message.delta" and first is None:
                    first = time.perf_counter() - t0
                elif event.event.startswith("thread.run.") and event.event.split(".")[-1] in (
                        "completed", "incomplete", "failed", "cancelled", "expired"):
                    status = getattr(event.data, "status", None)
            if first is None:
                raise RuntimeError(f"{label}: no text delta (run {status})")
            others = max(quiet, meter.stop())
            clean = others < args.busy
            s: dict[str, Any] = {"s": first, "prompt": probe.get("prompt_len"), "evaluated": probe.get("evaluated"),
                 "switch_ms": probe.get("switch_ms", 0.0), "others": others, "kind": kind}
            # what is neither the KV switch nor llama.cpp: HTTP, run creation, SQLite, prompt building, events
            s["server_ms"] = first * 1e3 - probe.get("model_ms", 0.0)
            if kind in samples:
                (samples[kind] if clean else dropped).append(s)
            eval_ms = probe.get("model_ms", 0.0) - s["switch_ms"]
            log(f"{label}: first token after {first * 1e3:.0f} ms; prompt {s['prompt']} tokens, evaluated "
                f"{s['evaluated']}; KV switch {s['switch_ms']:.0f} ms, eval {eval_ms:.0f} ms, "
                f"rest (HTTP, store, prompt, events) {s['server_ms']:.0f} ms; run {status}; other processes {others:.2f} "
                f"cores{'' if clean or kind not in samples else ' -> DISCARDED (contention), again'}")
            return clean

        def until_clean(kind: str, attempt, wanted: int) -> None:
            tries = 0
            while len(samples[kind]) < wanted and tries < wanted * args.max_attempts:
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

        until_clean("followup", followup, args.followups)
        until_clean("cold", lambda i: cold(i + 100), args.cold)

        # thread switch: two warm threads alternating (the base thread and the last cold one)
        a, b = base, next((t for t in reversed(cold_threads) if t != base), None) or new_thread(50)
        ttft("warmup", a, "switch warm-up: thread A")
        ttft("warmup", b, "switch warm-up: thread B")

        def switch(k: int) -> None:
            tid = a if k % 2 == 0 else b
            client.beta.threads.messages.create(thread_id=tid, role="user", content=FOLLOWUPS[k % len(FOLLOWUPS)])
            ttft("switch", tid, f"switch {k + 1} to thread {'A' if tid == a else 'B'}")

        until_clean("switch", switch, args.switches)
    engine.close()
    backend.close()
    shutil.rmtree(data_dir, ignore_errors=True)

    def med(kind: str, key: str = "s") -> float:
        return median([x[key] for x in samples[kind]])

    cold_s, follow_s, switch_s = med("cold"), med("followup"), med("switch")
    log(f"median: cold {cold_s * 1e3:.0f} ms (evaluated {med('cold', 'evaluated'):.0f} of {med('cold', 'prompt'):.0f} "
        f"tokens), follow-up {follow_s * 1e3:.0f} ms (evaluated {med('followup', 'evaluated'):.0f}), switch "
        f"{switch_s * 1e3:.0f} ms (evaluated {med('switch', 'evaluated'):.0f}, of which KV switch "
        f"{med('switch', 'switch_ms'):.0f} ms); outside the model (HTTP, store, prompt, events): cold "
        f"{med('cold', 'server_ms'):.0f} ms, follow-up {med('followup', 'server_ms'):.0f} ms")
    print(f"RESULT ttft cold_s={cold_s:.3f} followup_s={follow_s:.3f} ratio={follow_s / cold_s:.3f} switch_s={switch_s:.3f} "
          f"prompt_tokens={med('cold', 'prompt'):.0f} followup_evaluated={med('followup', 'evaluated'):.0f} "
          f"switch_evaluated={med('switch', 'evaluated'):.0f} switch_state_ms={med('switch', 'switch_ms'):.0f} "
          f"samples={len(samples['cold'])}/{len(samples['followup'])}/{len(samples['switch'])} discarded={len(dropped)} "
          f"backend={args.backend}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
