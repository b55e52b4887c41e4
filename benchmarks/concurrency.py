"""Many runs at once on one local model (llm/batch.py): what batched decoding buys, through the whole server.

0. **The model alone** (llm/batch.py's BatchedLlama in this process, no server): N = 1, 2, 4, 8 requests
   decoded together against the same N one after another: what batching buys before any HTTP, events or SSE.

Parts 1-3 start the real stack in this process (an Engine on a fresh database, the model in its model process
with `--parallel N`, uvicorn on loopback) and drives it with the official `openai` SDK, one Python thread per
client, every run streamed (`runs.create(stream=True)`) on a thread of its own, default sampling, a request that
writes until
max_completion_tokens:

1. **Aggregate tokens/s** with N = 1, 2, 4, 8 runs started together, against the same N runs one after another
   on the same server (the baseline, in the same run), and against one run alone. Per run: tokens/s (after its
   first token) and time to first token. Meanwhile a client polls GET /v1/assistants/{id} every 20 ms: its p50
   and p99 latency while the model generates.
2. **A burst of --burst runs** (20) created at once: the time until the last one completes on --parallel 4 and
   on --parallel 1 (runs one at a time: the sequential baseline).
3. **A cold prompt beside a stream**: one run streams; another thread then asks about a --cold-tokens (3,000)
   token message. The worst and median gap between the first stream's deltas while the cold prompt is
   evaluated (it is evaluated in chunks between the stream's tokens), and the cold run's time to first token.

4. **Head-of-line blocking**: a long run (--long-tokens, 600) streams; a short run (8 tokens) is created on
   another thread just after. The short run's time until it completes, on --parallel 4 and on --parallel 1.

measure() returns a ConcurrencyResult; the script prints its line: RESULT concurrency ...
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import openai

from offline_assistants.api import create_app
from offline_assistants.bench.common import log, machine
from offline_assistants.bench.measure import percentile
from offline_assistants.config import Settings, usable_cores
from offline_assistants.engine import Engine
from offline_assistants.llm.catalog import resolve
from offline_assistants.llm.loading import ModelOptions, open_backend
from offline_assistants.testing import serve

ASK = "Write a long story about a {} who travels the world."
SUBJECTS = ["baker", "sailor", "painter", "robot", "farmer", "pilot", "doctor", "poet", "miner", "tailor",
            "singer", "hunter", "weaver", "clock maker", "gardener", "teacher", "fisher", "builder", "monk", "cook"]


@dataclass(frozen=True)
class ModelAlone:
    """Part 0: N requests decoded together by the model alone, against the same N one after another."""

    n: int
    together_tok_s: float
    sequential_tok_s: float
    vs_sequential: float


@dataclass(frozen=True)
class AtOnce:
    """Part 1: N streamed runs started together through the server."""

    n: int
    tok_s: float  # all N together
    vs_sequential: float  # against the same N one after another on the same server
    vs_one: float  # against one run alone
    ttft_max_s: float
    get_p99_ms: float  # GET /v1/assistants/{id} meanwhile


@dataclass(frozen=True)
class Burst:
    """Part 2: until the last of a burst of runs completes, on --burst-parallel and on --parallel 1."""

    parallel_s: float
    sequential_s: float
    ratio: float


@dataclass(frozen=True)
class ColdBesideStream:
    """Part 3: a cold prompt evaluated while another run streams."""

    cold_ttft_s: float
    gap_worst_ms: float  # the stream's gaps between deltas meanwhile
    gap_median_ms: float


@dataclass(frozen=True)
class ShortBehindLong:
    """Part 4: a short run created just after a long one, until it completes."""

    parallel_s: float
    sequential_s: float


@dataclass(frozen=True)
class ConcurrencyResult:
    """The parts that ran."""

    model_alone: tuple[ModelAlone, ...] = ()
    at_once: tuple[AtOnce, ...] = ()
    burst: Burst | None = None
    cold_beside_stream: ColdBesideStream | None = None
    short_behind_long: ShortBehindLong | None = None

    def line(self) -> str:
        fields: dict[str, float] = {}
        for m in self.model_alone:
            fields[f"model_n{m.n}_vs_sequential"] = m.vs_sequential
        for a in self.at_once:
            fields |= {f"n{a.n}_tok_s": a.tok_s, f"n{a.n}_vs_sequential": a.vs_sequential, f"n{a.n}_vs_one": a.vs_one,
                       f"n{a.n}_ttft_max_s": a.ttft_max_s, f"n{a.n}_get_p99_ms": a.get_p99_ms}
        if self.burst:
            fields |= {"burst_s": self.burst.parallel_s, "burst_sequential_s": self.burst.sequential_s,
                       "burst_ratio": self.burst.ratio}
        if self.cold_beside_stream:
            c = self.cold_beside_stream
            fields |= {"cold_ttft_s": c.cold_ttft_s, "gap_worst_ms": c.gap_worst_ms, "gap_median_ms": c.gap_median_ms}
        if self.short_behind_long:
            fields |= {"short_behind_long_s": self.short_behind_long.parallel_s,
                       "short_behind_long_sequential_s": self.short_behind_long.sequential_s}
        return "RESULT concurrency " + " ".join(f"{k}={v:.3g}" for k, v in fields.items())


@dataclass
class Stream:
    started: float = 0.0
    deltas: list[float] = field(default_factory=list)
    ended: float = 0.0
    tokens: int = 0


@contextmanager
def server(parallel: int, args: argparse.Namespace) -> Iterator[tuple[openai.OpenAI, str]]:
    folder = Path(tempfile.mkdtemp(prefix="oa-concurrency-"))
    options = ModelOptions(n_ctx=args.n_ctx, n_threads=args.threads, parallel=parallel, cpu_repack=args.cpu_repack)
    backend, choice = open_backend(resolve(args.model), options, cache_dir=folder / "cache")
    log(f"--parallel {parallel}: model loaded ({choice.banner()})")
    engine = Engine(Settings(data_dir=folder / "data", max_concurrent_runs=parallel, max_queued_runs=0), backend)
    try:
        with serve(create_app(engine)) as url:
            client = openai.OpenAI(base_url=url, api_key="sk-local", max_retries=0, timeout=600)
            assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be helpful.")
            yield client, assistant.id
    finally:
        engine.close()
        backend.close()


def stream_run(client: openai.OpenAI, assistant_id: str, ask: str, tokens: int, out: Stream,
               start: threading.Barrier | None = None) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": ask}])
    if start is not None:
        start.wait()
    out.started = time.monotonic()
    # stream=True: the SDK's typed events, without runs.stream()'s snapshot accumulation (which costs this
    # process's cores more per delta than the server spends on it, and these clients share the cores).
    with client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id, stream=True,
                                         max_completion_tokens=tokens) as events:
        for event in events:
            if event.event == "thread.message.delta":
                out.deltas.append(time.monotonic())
            elif event.event.startswith("thread.run.") and event.event.split(".")[-1] in (
                    "completed", "incomplete", "failed", "cancelled", "expired"):
                out.ended = time.monotonic()
                out.tokens = event.data.usage.completion_tokens if event.data.usage else 0  # type: ignore[union-attr]


def at_once(client: openai.OpenAI, assistant_id: str, asks: list[str], tokens: int) -> list[Stream]:
    streams = [Stream() for _ in asks]
    barrier = threading.Barrier(len(asks))
    threads = [threading.Thread(target=stream_run, args=(client, assistant_id, a, tokens, s, barrier))
               for a, s in zip(asks, streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return streams


class Poller:
    """GET /v1/assistants/{id} every 20 ms on its own thread: the latency of a request that never waits on the
    model."""

    def __init__(self, client: openai.OpenAI, assistant_id: str) -> None:
        self.client, self.assistant_id = client, assistant_id
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            began = time.perf_counter()
            self.client.beta.assistants.retrieve(self.assistant_id)
            self.samples.append(time.perf_counter() - began)


def aggregate(streams: list[Stream]) -> float:
    return sum(s.tokens for s in streams) / (max(s.ended for s in streams) - min(s.started for s in streams))


def part0(args: argparse.Namespace) -> tuple[ModelAlone, ...]:
    from offline_assistants.llm.backend import Sampling
    from offline_assistants.llm.batch import BatchedLlama
    from offline_assistants.llm.llama import LlamaTokenizer
    from offline_assistants.llm.messages import Generate, Generated

    model = resolve(args.model)
    tokenizer = LlamaTokenizer(model.path)
    generator = BatchedLlama(model.path, n_ctx=args.n_ctx, n_threads=args.threads, parallel=max(args.n))
    sampling = Sampling(temperature=1.0, max_tokens=args.tokens)
    prompts = [tokenizer.encode_system("Be helpful.") + tokenizer.encode_message("user", ASK.format(s))
               + tokenizer.generation_prefix() for s in SUBJECTS]

    def decode(batch: list[int]) -> tuple[float, int]:
        began, tokens = time.perf_counter(), 0
        for i in batch:
            generator.submit(Generate(i, prompts[i % len(prompts)], sampling, None))
        while generator.busy():
            tokens += sum(1 for m in generator.step() if isinstance(m, Generated))
        return time.perf_counter() - began, tokens

    decode([0])  # warm-up
    out = []
    for n in args.n:
        seq_s, seq_tokens = 0.0, 0
        for i in range(n):
            took, tokens = decode([i])
            seq_s, seq_tokens = seq_s + took, seq_tokens + tokens
        took, tokens = decode(list(range(n)))
        ratio = (tokens / took) / (seq_tokens / seq_s)
        log(f"model alone, N={n}: {tokens / took:6.1f} tok/s together, {seq_tokens / seq_s:6.1f} one after "
            f"another (x{ratio:.2f})")
        out.append(ModelAlone(n, tokens / took, seq_tokens / seq_s, ratio))
    generator.close()
    return tuple(out)


def part1(args: argparse.Namespace) -> tuple[AtOnce, ...]:
    one = 0.0
    out = []
    for n in args.n:
        with server(n, args) as (client, assistant_id):
            asks = [ASK.format(SUBJECTS[i % len(SUBJECTS)]) for i in range(n)]
            stream_run(client, assistant_id, ASK.format("warm-up"), 8, Stream())
            sequential = [Stream() for _ in asks]
            with Poller(client, assistant_id):  # the same polling load on the baseline
                for ask, s in zip(asks, sequential):
                    stream_run(client, assistant_id, ask, args.tokens, s)
            seq_rate = aggregate(sequential)
            one = one or seq_rate
            with Poller(client, assistant_id) as poll:
                streams = at_once(client, assistant_id, asks, args.tokens)
            rate = aggregate(streams)
            per_run = [s.tokens / (s.ended - s.deltas[0]) for s in streams if s.deltas and s.ended > s.deltas[0]]
            ttft = [s.deltas[0] - s.started for s in streams if s.deltas]
            log(f"N={n}: {rate:6.1f} tok/s together, {seq_rate:6.1f} one after another (x{rate / seq_rate:.2f}), "
                f"x{rate / one:.2f} one run's; per run {statistics.median(per_run):5.1f} tok/s, TTFT median "
                f"{statistics.median(ttft):.2f} s max {max(ttft):.2f} s; GET assistant p50 "
                f"{percentile(poll.samples, .5) * 1e3:.1f} ms p99 {percentile(poll.samples, .99) * 1e3:.1f} ms "
                f"({len(poll.samples)} requests)")
            out.append(AtOnce(n, rate, rate / seq_rate, rate / one, max(ttft), percentile(poll.samples, .99) * 1e3))
    return tuple(out)


def part2(args: argparse.Namespace) -> Burst:
    asks = [ASK.format(SUBJECTS[i % len(SUBJECTS)]) for i in range(args.burst)]
    took = {}
    for n in (args.burst_parallel, 1):
        with server(n, args) as (client, assistant_id):
            stream_run(client, assistant_id, ASK.format("warm-up"), 8, Stream())
            streams = at_once(client, assistant_id, asks, args.burst_tokens)
            took[n] = max(s.ended for s in streams) - min(s.started for s in streams)
            ttft = [s.deltas[0] - s.started for s in streams if s.deltas]
            log(f"burst of {args.burst} on --parallel {n}: last done after {took[n]:.1f} s, TTFT median "
                f"{statistics.median(ttft):.1f} s max {max(ttft):.1f} s")
    log(f"burst: x{took[1] / took[args.burst_parallel]:.2f} sooner with --parallel {args.burst_parallel}")
    return Burst(took[args.burst_parallel], took[1], took[1] / took[args.burst_parallel])


def part3(args: argparse.Namespace) -> ColdBesideStream:
    with server(args.burst_parallel, args) as (client, assistant_id):
        stream_run(client, assistant_id, ASK.format("warm-up"), 8, Stream())
        words = "The committee met again to review the long list of rules for the harbour. "
        cold_text = (words * (args.cold_tokens // 14 + 1)) + "\nWhat did the committee review?"
        runner, cold = Stream(), Stream()
        first = threading.Thread(target=stream_run, args=(client, assistant_id, ASK.format("whale"), 400, runner))
        first.start()
        while len(runner.deltas) < 10:
            time.sleep(0.01)
        stream_run(client, assistant_id, cold_text, 16, cold)
        first.join()
        during = [b - a for a, b in zip(runner.deltas, runner.deltas[1:]) if cold.started <= b <= cold.deltas[0]]
        before = [b - a for a, b in zip(runner.deltas, runner.deltas[1:]) if b < cold.started]
        log(f"cold prompt of ~{args.cold_tokens} tokens beside a stream: its TTFT {cold.deltas[0] - cold.started:.1f}"
            f" s; the stream's gaps meanwhile: worst {max(during) * 1e3:.0f} ms, median "
            f"{statistics.median(during) * 1e3:.0f} ms ({len(during)} gaps; {statistics.median(before) * 1e3:.0f}"
            f" ms before it arrived)")
        return ColdBesideStream(cold.deltas[0] - cold.started, max(during) * 1e3, statistics.median(during) * 1e3)


def part4(args: argparse.Namespace) -> ShortBehindLong:
    took = {}
    for n in (args.burst_parallel, 1):
        with server(n, args) as (client, assistant_id):
            stream_run(client, assistant_id, ASK.format("warm-up"), 8, Stream())
            long, short = Stream(), Stream()
            first = threading.Thread(target=stream_run,
                                     args=(client, assistant_id, ASK.format("whale"), args.long_tokens, long))
            first.start()
            while not long.deltas:
                time.sleep(0.01)
            stream_run(client, assistant_id, "Say hello.", 8, short)
            first.join()
            took[n] = short.ended - short.started
            log(f"--parallel {n}: a short run behind a {long.tokens}-token one completed after {took[n]:.2f} s")
    return ShortBehindLong(took[args.burst_parallel], took[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8], help="concurrent runs (default 1 2 4 8)")
    ap.add_argument("--tokens", type=int, default=64, help="max_completion_tokens per run in part 1")
    ap.add_argument("--burst", type=int, default=20, help="runs in the burst (part 2)")
    ap.add_argument("--burst-tokens", type=int, default=32)
    ap.add_argument("--burst-parallel", type=int, default=4, help="--parallel for parts 2 and 3 (the default)")
    ap.add_argument("--cold-tokens", type=int, default=3000, help="the cold prompt's size in part 3")
    ap.add_argument("--long-tokens", type=int, default=600, help="the long run's tokens in part 4")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=usable_cores())
    ap.add_argument("--model", default=None,
                    help="a .gguf path or model name, as `serve --model` (default: the embedded default)")
    ap.add_argument("--cpu-repack", choices=["auto", "on", "off"], default="auto",
                    help="as `serve --cpu-repack` (default auto)")
    ap.add_argument("--parts", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args()
    log("machine:", machine())
    print(measure(args).line())
    return 0


def measure(args: argparse.Namespace) -> ConcurrencyResult:
    """The parts asked for (--parts), in their order."""
    parts = set(args.parts)
    return ConcurrencyResult(
        model_alone=part0(args) if 0 in parts else (),
        at_once=part1(args) if 1 in parts else (),
        burst=part2(args) if 2 in parts else None,
        cold_beside_stream=part3(args) if 3 in parts else None,
        short_behind_long=part4(args) if 4 in parts else None)


if __name__ == "__main__":
    sys.exit(main())
