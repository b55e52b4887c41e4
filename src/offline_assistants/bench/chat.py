"""Chat Completions: ours against llama-cpp-python's own OpenAI server on the same model, and a follow-up request
that repeats the conversation against the same request cold.

Our server is uvicorn on loopback (offline_assistants.testing.serve); the baseline is `python -m llama_cpp.server`
(bench/upstream.py) on the same GGUF with the same n_ctx, threads (prompt and generation), weight repacking, flash
attention and batch size. Every timed request is `client.chat.completions.create(stream=True)` through the
official `openai` SDK at temperature 0; time to first token runs from just before the POST to the first chunk with
content (both servers send the role alone first). Generation tok/s is (tokens - 1) / (first content chunk -> last),
the reply's text counted by the model's tokenizer on both sides (llama-cpp-python's server streams no usage).

1. speed (issue 25's target: tok/s >= 1.0x the baseline's). --reps repetitions, each on new content: a system
   message, generated chat messages of about --history-tokens tokens and a request to write at length, with
   max_tokens --max-tokens. Each server answers the same messages once per repetition, alternating which goes
   first. Both evaluate the whole prompt (new content: nothing of it is cached), so the time to first token
   compares prompt evaluation and what each server adds. `same_output` counts the repetitions where both wrote
   the same text. One untimed request per server first (its usage gives each server's prompt length).
2. followup (target: <= 10% of cold). --conversations times, each a new conversation: a system message
   "Conversation NNNN. ...", generated chat messages of about --followup-history-tokens tokens and a short
   question. On each server, in turn:
   - the conversation is sent (untimed, max_tokens --followup-max-tokens): it evaluates the whole context;
   - cold: the follow-up's messages (the conversation, that reply, a second question) behind a different first
     message of the same length (another conversation number), so nothing cached matches past a few tokens;
   - follow-up: the same messages behind the conversation's own beginning. Ours tells a conversation by how it
     begins (engine/chat.py's cache key) and continues the model state the first request left, although the cold
     request ran in between; llama-cpp-python's server runs here with its prompt cache on (`--cache`), which saves
     the state after each request and loads the one sharing the longest prefix.
   The ratio is follow-up / cold on each server; ours also reports usage.prompt_tokens_details.cached_tokens.

The machine may be shared: as in ttft.py, before each timed request the script waits for other processes to go
idle, measures the cores they use meanwhile (both servers are ours), and takes another sample when they used
--busy cores or more. Each log line also gives, for ours, the model's part of the first token's time (the probe of
bench/streams.py: KV switch, prompt evaluation, the first token) and the prompt tokens it evaluated.

measure() returns a ChatResult; the script prints its line: RESULT chat ours_tok_s=.. tok_s_ratio=.. ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from offline_assistants.bench.common import (
    ModelSetup,
    add_model_options,
    log,
    machine,
    model_options,
    open_bench_backend,
    repack_choice,
)
from offline_assistants.bench.measure import OtherLoad, median, result_value, wait_quiet
from offline_assistants.bench.responses import INSTRUCTIONS, MODEL, WRITE, face_messages, questions
from offline_assistants.bench.streams import Probe
from offline_assistants.bench.upstream import UpstreamSettings, llama_cpp_server
from offline_assistants.llm.backend import ModelBackend

Part = Literal["speed", "followup"]
OURS, THEIRS = "ours", "llama-cpp-python"


@dataclass(frozen=True)
class ChatOptions:
    reps: int = 7  # part 1's repetitions, each server once per repetition
    history_tokens: int = 300
    max_tokens: int = 128
    conversations: int = 3  # part 2's conversations: cold and follow-up once each per server
    followup_history_tokens: int = 2000
    followup_max_tokens: int = 16
    parts: tuple[Part, ...] = ("speed", "followup")
    baseline: bool = True  # llama-cpp-python's server beside ours (it loads model.model's file)
    model: ModelSetup = field(default_factory=ModelSetup)


QUICK = ChatOptions(reps=2, max_tokens=64, conversations=1, model=ModelSetup(quiet_wait=5, max_attempts=1))


@dataclass(frozen=True)
class Reply:
    """One streamed chat completion as the client saw it (seconds from just before the POST)."""

    first_s: float  # the first content chunk
    gen_s: float  # first content chunk -> last
    total_s: float  # [DONE]
    text: str
    finish_reason: str
    output_tokens: int  # the text, counted by the model's tokenizer
    prompt_tokens: int | None  # usage, where the server streams it (ours)
    cached_tokens: int | None
    model_ms: float | None = None  # of first_s, inside our model (Probe)
    evaluated: int | None = None  # prompt tokens our model evaluated (Probe)

    @property
    def tok_s(self) -> float | None:
        return (self.output_tokens - 1) / self.gen_s if self.output_tokens > 1 and self.gen_s > 0 else None

    def describe(self) -> str:
        inside = "" if self.model_ms is None else f" (model {self.model_ms:.0f} ms, evaluated {self.evaluated})"
        usage = "" if self.prompt_tokens is None else f"; prompt {self.prompt_tokens} ({self.cached_tokens} cached)"
        return (f"first token {self.first_s * 1e3:.0f} ms{inside}, total {self.total_s:.2f} s, "
                f"{result_value(self.tok_s)} tok/s, {self.output_tokens} tokens ({self.finish_reason}){usage}")


@dataclass(frozen=True)
class Side:
    """Part 1, one server: medians over the clean repetitions."""

    first_s: float
    tok_s: float | None
    total_s: float


@dataclass(frozen=True)
class Speed:
    ours: Side
    theirs: Side | None
    prompt_tokens: tuple[int, int | None]  # the warm-up's prompt on ours and on theirs, as their usage gives it
    output_tokens: int  # ours, median
    same_output: int  # repetitions where both wrote the same text
    reps: int

    @property
    def tok_s_ratio(self) -> float | None:
        t = self.theirs
        return None if t is None or t.tok_s is None or self.ours.tok_s is None else self.ours.tok_s / t.tok_s

    @property
    def ttft_ratio(self) -> float | None:  # below 1: ours answers sooner
        return None if self.theirs is None else self.ours.first_s / self.theirs.first_s


@dataclass(frozen=True)
class Followup:
    """Part 2: medians of the clean samples (seconds); ratios are follow-up / cold."""

    cold_s: float
    followup_s: float
    prompt_tokens: tuple[int, int]  # ours, cold and follow-up (the same length)
    cached_tokens: int  # ours, the follow-up
    evaluated: int | None  # ours, the follow-up's prompt tokens the model evaluated
    theirs_cold_s: float | None
    theirs_followup_s: float | None
    samples: int

    @property
    def ratio(self) -> float:
        return self.followup_s / self.cold_s

    @property
    def theirs_ratio(self) -> float | None:
        if self.theirs_cold_s is None or self.theirs_followup_s is None:
            return None
        return self.theirs_followup_s / self.theirs_cold_s


@dataclass(frozen=True)
class ChatResult:
    speed: Speed | None
    followup: Followup | None
    threads: int
    discarded: int
    backend: str

    def line(self) -> str:
        s, f = self.speed, self.followup
        parts = ["RESULT chat"]
        if s is not None:
            t = s.theirs
            parts += [f"ours_tok_s={result_value(s.ours.tok_s)}",
                      f"llama_cpp_tok_s={result_value(t.tok_s if t else None)}",
                      f"tok_s_ratio={result_value(s.tok_s_ratio)}", f"ours_ttft_s={s.ours.first_s:.3f}",
                      f"llama_cpp_ttft_s={result_value(t.first_s if t else None)}",
                      f"ttft_ratio={result_value(s.ttft_ratio)}", f"ours_total_s={s.ours.total_s:.3f}",
                      f"llama_cpp_total_s={result_value(t.total_s if t else None)}",
                      "prompt_tokens={}/{}".format(*s.prompt_tokens), f"output_tokens={s.output_tokens}",
                      f"same_output={s.same_output}/{s.reps}"]
        if f is not None:
            parts += [f"cold_s={f.cold_s:.3f}", f"followup_s={f.followup_s:.3f}", f"followup_ratio={f.ratio:.3f}",
                      "followup_prompt_tokens={}/{}".format(*f.prompt_tokens), f"cached_tokens={f.cached_tokens}",
                      f"evaluated={f.evaluated}", f"llama_cpp_cold_s={result_value(f.theirs_cold_s)}",
                      f"llama_cpp_followup_s={result_value(f.theirs_followup_s)}",
                      f"llama_cpp_followup_ratio={result_value(f.theirs_ratio)}", f"conversations={f.samples}"]
        return " ".join([*parts, f"threads={self.threads}", f"discarded={self.discarded}",
                         f"backend={self.backend}"])


def stream_chat(client: Any, count: Callable[[str], int], **params: Any) -> Reply:
    """chat.completions.create(stream=True, **params), timed."""
    t0 = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    finish = usage = None
    for chunk in client.chat.completions.create(stream=True, **params):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            if choice.delta.content:
                last = time.perf_counter()
                first = first or last
                parts.append(choice.delta.content)
            finish = choice.finish_reason or finish
    end = time.perf_counter()
    if not first:
        raise RuntimeError(f"no content in the stream ({finish})")
    text = "".join(parts)
    details = usage and usage.prompt_tokens_details
    return Reply(first - t0, last - first, end - t0, text, finish or "none", count(text),
                 usage and usage.prompt_tokens, details and details.cached_tokens)


Timed = Callable[[str, str, Callable[[], Reply]], tuple[Reply, bool]]  # server, label, the request


def measure(options: ChatOptions, backend: ModelBackend | None = None) -> ChatResult:
    """Both parts on `backend` (by default the model options.model names, opened as `serve` opens it; the baseline
    server loads that model's file, so it needs the default)."""
    setup = options.model
    if options.baseline and backend is not None:
        raise ValueError("the baseline server loads options.model's file: leave backend out, or baseline off")
    import openai

    from offline_assistants.api import create_app
    from offline_assistants.llm.catalog import resolve
    from offline_assistants.testing import make_engine, serve

    log("machine:", json.dumps(machine()))
    threads = model_options(setup).n_threads
    model = open_bench_backend(setup) if backend is None else backend
    log(f"model {model.name}, n_ctx {model.n_ctx}, threads {threads}, {type(model).__name__}")
    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-chat-"))
    engine = make_engine(data_dir, model)
    probe = Probe(model)
    dropped = 0

    def timed(server: str, label: str, fn: Callable[[], Reply]) -> tuple[Reply, bool]:
        """fn() on `server` with the load of other processes around it (on ours, with our model's part too);
        whether it was clean."""
        nonlocal dropped
        quiet = wait_quiet(setup.quiet_wait, threshold=setup.busy, label=label) if setup.quiet_wait > 0 else 0.0
        meter = OtherLoad().start()
        probe.clear()
        out = fn()
        if server == OURS:
            out = replace(out, model_ms=probe.model_ms, evaluated=probe.evaluated)
        others = max(quiet, meter.stop())
        clean = others < setup.busy
        dropped += not clean
        log(f"{server} {label}: {out.describe()}; other processes {others:.2f} cores"
            f"{'' if clean else ' -> DISCARDED (contention)'}")
        return out, clean

    @contextlib.contextmanager
    def baseline(cache: bool) -> Iterator[Any]:
        """llama-cpp-python's server as ours loads the model (its client), or None without a baseline."""
        if not options.baseline:
            yield None
            return
        settings = UpstreamSettings(resolve(setup.model).path, model.n_ctx, threads, repack_choice(setup).enabled,
                                    cache=cache)
        log(f"starting llama-cpp-python's server (prompt cache {'on' if cache else 'off'})")
        with llama_cpp_server(settings, data_dir) as url:
            yield openai.OpenAI(base_url=url, api_key="local", max_retries=0)

    speed = followup = None
    try:
        with serve(create_app(engine)) as url:
            ours = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
            if "speed" in options.parts:
                with baseline(cache=False) as theirs:
                    speed = _speed(_clients(ours, theirs), options, model, timed)
            if "followup" in options.parts:
                with baseline(cache=True) as theirs:
                    followup = _followup(_clients(ours, theirs), options, model, timed)
    finally:
        engine.close()
        probe.close()
        if backend is None:
            model.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return ChatResult(speed, followup, threads, dropped, setup.backend if backend is None else model.name)


def _clients(ours: Any, theirs: Any) -> dict[str, Any]:
    return {OURS: ours} if theirs is None else {OURS: ours, THEIRS: theirs}


def _ask(name: str, client: Any, model: ModelBackend, messages: list[dict[str, str]], max_tokens: int) -> Reply:
    # usage in the stream is ours only: llama-cpp-python's server has no stream_options
    extra = {"stream_options": {"include_usage": True}} if name == OURS else {}
    return stream_chat(client, model.count, model=MODEL, messages=messages, max_tokens=max_tokens, temperature=0,
                       **extra)


def _warm_up(clients: dict[str, Any], messages: list[dict[str, str]], max_tokens: int) -> dict[str, tuple[int, str]]:
    """One untimed request per server: its usage.prompt_tokens and its reply."""
    out = {}
    for name, client in clients.items():
        r = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens, temperature=0)
        out[name] = (r.usage.prompt_tokens, r.choices[0].message.content or "")
        log(f"{name}: prompt {r.usage.prompt_tokens} tokens, reply {r.usage.completion_tokens} tokens "
            f"({r.choices[0].finish_reason})")
    return out


def _rounds(clients: dict[str, Any], wanted: int, attempts: int,
            take: Callable[[int, str], tuple[Reply, bool]]) -> list[dict[str, Reply]]:
    """take(rep, server) for each server, alternating which goes first, until `wanted` repetitions were clean on
    every server or wanted * attempts were taken; the contaminated ones when none was clean."""
    clean: list[dict[str, Reply]] = []
    dirty: list[dict[str, Reply]] = []
    rep = 0
    while len(clean) < wanted and rep < max(1, wanted * attempts):
        order = list(clients) if rep % 2 == 0 else list(reversed(clients))
        sides = {name: take(rep, name) for name in order}
        (clean if all(ok for _, ok in sides.values()) else dirty).append({n: r for n, (r, _) in sides.items()})
        rep += 1
    if not clean:
        log("WARNING: no clean repetition; using the contaminated ones")
    return clean or dirty


def _side(replies: list[Reply]) -> Side:
    rates = [r.tok_s for r in replies if r.tok_s is not None]
    return Side(median([r.first_s for r in replies]), median(rates) if rates else None,
                median([r.total_s for r in replies]))


def _speed(clients: dict[str, Any], options: ChatOptions, model: ModelBackend, timed: Timed) -> Speed:
    def messages(seed: int) -> list[dict[str, str]]:
        return [{"role": "system", "content": INSTRUCTIONS}, *face_messages(seed, options.history_tokens, model),
                {"role": "user", "content": WRITE}]

    log("speed: warm-up (not measured)")
    warm = _warm_up(clients, messages(-1), 16)
    reps = _rounds(clients, options.reps, options.model.max_attempts,
                   lambda rep, name: timed(name, f"rep {rep + 1}", lambda: _ask(
                       name, clients[name], model, messages(1000 + rep), options.max_tokens)))
    ours = _side([r[OURS] for r in reps])
    theirs = _side([r[THEIRS] for r in reps]) if THEIRS in clients else None
    result = Speed(ours, theirs, (warm[OURS][0], warm[THEIRS][0] if THEIRS in warm else None),
                   round(median([r[OURS].output_tokens for r in reps])),
                   sum(THEIRS in r and r[OURS].text == r[THEIRS].text for r in reps), len(reps))
    log(f"speed, median: ours {result_value(ours.tok_s)} tok/s, first token {ours.first_s * 1e3:.0f} ms; "
        f"llama-cpp-python {result_value(theirs.tok_s if theirs else None)} tok/s, first token "
        f"{result_value(theirs.first_s * 1e3 if theirs else None)} ms; tok/s ratio {result_value(result.tok_s_ratio)}, "
        f"first token ratio {result_value(result.ttft_ratio)}")
    return result


def _followup(clients: dict[str, Any], options: ChatOptions, model: ModelBackend, timed: Timed) -> Followup:
    def opening(number: int, c: int) -> list[dict[str, str]]:
        history = face_messages(2000 + c, options.followup_history_tokens, model)
        return [{"role": "system", "content": f"Conversation {number:04d}. {INSTRUCTIONS}"}, *history]

    m = options.followup_max_tokens
    samples: list[dict[str, tuple[Reply, Reply]]] = []  # per conversation: server -> (cold, follow-up)
    dirty: list[dict[str, tuple[Reply, Reply]]] = []
    c = 0
    while len(samples) < options.conversations and c < max(1, options.conversations * options.model.max_attempts):
        q1, q2 = questions(2, seed=c)
        own, other = opening(1000 + c, c), opening(6000 + c, c)  # the same length, another beginning
        log(f"conversation {c + 1}: sent once untimed, on each server")
        first = _warm_up(clients, [*own, {"role": "user", "content": q1}], m)
        sides: dict[str, tuple[Reply, Reply]] = {}
        ok = True
        for name in clients:
            rest = [{"role": "user", "content": q1}, {"role": "assistant", "content": first[name][1]},
                    {"role": "user", "content": q2}]
            cold, clean_cold = timed(name, f"cold {c + 1}", lambda: _ask(  # noqa: B023
                name, clients[name], model, [*other, *rest], m))  # noqa: B023
            again, clean_again = timed(name, f"follow-up {c + 1}", lambda: _ask(  # noqa: B023
                name, clients[name], model, [*own, *rest], m))  # noqa: B023
            sides[name] = (cold, again)
            ok = ok and clean_cold and clean_again
        (samples if ok else dirty).append(sides)
        c += 1
    if not samples:
        log("WARNING: no clean conversation; using the contaminated ones")
        samples = dirty

    def med(name: str, which: int) -> float | None:
        return median([s[name][which].first_s for s in samples]) if name in clients else None

    cold, again = samples[0][OURS]
    result = Followup(
        cold_s=median([s[OURS][0].first_s for s in samples]), followup_s=median([s[OURS][1].first_s for s in samples]),
        prompt_tokens=(cold.prompt_tokens or 0, again.prompt_tokens or 0), cached_tokens=again.cached_tokens or 0,
        evaluated=again.evaluated, theirs_cold_s=med(THEIRS, 0), theirs_followup_s=med(THEIRS, 1),
        samples=len(samples))
    log(f"follow-up, median first token: ours {result.followup_s * 1e3:.0f} ms against {result.cold_s * 1e3:.0f} ms "
        f"cold ({result.ratio:.1%}); llama-cpp-python with its prompt cache "
        f"{result_value(result.theirs_followup_s)} s against {result_value(result.theirs_cold_s)} s cold "
        f"({result_value(result.theirs_ratio)})")
    return result


def main(argv: list[str] | None = None) -> int:
    d = ChatOptions()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"a short run: --reps {QUICK.reps} --max-tokens {QUICK.max_tokens} --conversations "
                         f"{QUICK.conversations} --quiet-wait {QUICK.model.quiet_wait:g} --max-attempts "
                         f"{QUICK.model.max_attempts}, unless given")
    ap.add_argument("--only", choices=["speed", "followup"], help="run one part (default both)")
    ap.add_argument("--no-baseline", action="store_true", help="ours alone, without llama-cpp-python's server")
    ap.add_argument("--reps", type=int, default=d.reps, help="part 1's repetitions (default %(default)s)")
    ap.add_argument("--history-tokens", type=int, default=d.history_tokens,
                    help="tokens of chat history per part 1 repetition (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=d.max_tokens,
                    help="max_tokens of part 1's replies (default %(default)s)")
    ap.add_argument("--conversations", type=int, default=d.conversations,
                    help="part 2's conversations (default %(default)s)")
    ap.add_argument("--followup-history-tokens", type=int, default=d.followup_history_tokens,
                    help="tokens of chat history per part 2 conversation (default %(default)s)")
    ap.add_argument("--followup-max-tokens", type=int, default=d.followup_max_tokens,
                    help="max_tokens of part 2's requests (default %(default)s)")
    add_model_options(ap, unit="sample")
    args = ap.parse_args(argv)
    if args.quick:  # the quick values become the defaults: options given still win
        ap.set_defaults(reps=QUICK.reps, max_tokens=QUICK.max_tokens, conversations=QUICK.conversations,
                        quiet_wait=QUICK.model.quiet_wait, max_attempts=QUICK.model.max_attempts)
        args = ap.parse_args(argv)
    result = measure(ChatOptions(
        reps=args.reps, history_tokens=args.history_tokens, max_tokens=args.max_tokens,
        conversations=args.conversations, followup_history_tokens=args.followup_history_tokens,
        followup_max_tokens=args.followup_max_tokens, parts=(args.only,) if args.only else d.parts,
        baseline=not args.no_baseline, model=ModelSetup.from_args(args)))
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
