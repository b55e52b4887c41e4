"""The Responses face: a follow-up's time to first token against the same context cold, and the Responses face
against the Assistants face on the same work.

uvicorn on loopback (offline_assistants.testing.serve) and the official `openai` SDK, every timed request streamed.
Time to first token runs from just before the POST (`responses.create(stream=True)`, `runs.create(stream=True)`)
to the first text delta received (`response.output_text.delta`, `thread.message.delta`).

1. Follow-ups (issue 24's target: <= 5% of cold), all at temperature 0 with the same instructions:
   chain         a chain of --turns responses (previous_response_id), each a short user question answered in at
                 most --max-tokens tokens, all generated; then --followups more turns, each timed. A response that
                 continues the newest one of its chain runs on the chain's thread, so the model evaluates only the
                 new turn's tokens.
   conversation  a conversation created with the chain's first turns-1 turns as items (nothing generated), its
                 last turn generated (untimed: this evaluates the whole context once), then the same follow-ups.
   cold          the context of the chain's first follow-up sent cold: a fresh response whose input carries the
                 whole history as message items (the questions, the chain's replies) and the new question, with
                 neither previous_response_id nor conversation. That is a new thread, a cache key the model has
                 never seen, so it evaluates the whole prompt. --cold samples, each a new response.
   Each sample's usage is logged: input_tokens shows the three had the same context, cached_tokens the KV reuse.
2. Faces (target: time and tok/s within 5%). --reps repetitions, each on new content: a thread and a conversation
   holding the same generated chat messages (about --face-history-tokens tokens), then the same question, a
   request to write at length. The Assistants face adds it with messages.create and streams runs.create by an
   assistant; the Responses face streams responses.create(conversation=..., input=question) with the same
   instructions; both at temperature 0 with --face-max-tokens, alternating which goes first, timed from before
   the first POST. Per face: the time to the terminal event, time to first token, and generation tok/s
   ((output tokens - 1) / the time from the first delta to the last). On the same prompt at temperature 0 both
   faces write the same text (`same_output` counts the repetitions where they did).

The machine may be shared: as in ttft.py, before each timed request the script waits for other processes to go
idle, measures the cores they use meanwhile, and takes another sample (a new follow-up turn, a new cold response,
a new repetition) when they used --busy cores or more.

Each sample's log line splits the time to first token as ttft.py does, from a wrapper around the backend instance
(bench/streams.py's Probe; nothing is changed): the model's part (KV switch, prompt evaluation, the first token,
and the prompt tokens it evaluated) and the rest (HTTP, the request's rows, choosing the window, events).

measure() returns a ResponsesResult; the script prints its line: RESULT responses cold_s=.. chain_s=.. ...
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from offline_assistants.bench.common import (
    ModelSetup,
    add_model_options,
    chat_message,
    conversation,
    log,
    machine,
    open_bench_backend,
)
from offline_assistants.bench.measure import OtherLoad, median, result_value, wait_quiet
from offline_assistants.bench.streams import Probe, Streamed, stream_response, stream_run
from offline_assistants.llm.backend import ModelBackend

MODEL = "gpt-4o"  # any name: the server answers with its model
INSTRUCTIONS = "You are a helpful assistant. Answer briefly."
WRITE = ("Using everything above, write a very long and detailed report: a title, an introduction, then ten "
         "numbered sections of several paragraphs each. Do not stop early.")
Part = Literal["followups", "faces"]


@dataclass(frozen=True)
class ResponsesOptions:
    turns: int = 50  # turns of history before the timed follow-ups
    followups: int = 5  # timed follow-up turns on the chain, and on the conversation
    cold: int = 3  # cold samples, one new response each
    max_tokens: int = 16  # max_output_tokens of every turn of part 1 (16 is the API's least)
    reps: int = 7  # part 2's repetitions, each face once per repetition
    face_history_tokens: int = 300
    face_max_tokens: int = 128
    parts: tuple[Part, ...] = ("followups", "faces")
    model: ModelSetup = field(default_factory=ModelSetup)


QUICK = ResponsesOptions(followups=2, cold=1, reps=2, face_max_tokens=64,
                         model=ModelSetup(quiet_wait=5, max_attempts=1))


@dataclass(frozen=True)
class Followups:
    """Part 1: medians of the clean samples of one way of continuing (seconds, tokens)."""

    cold_s: float
    chain_s: float
    conversation_s: float
    cold_input_tokens: int  # the three contexts, as usage.input_tokens gives them
    chain_input_tokens: int
    conversation_input_tokens: int
    chain_cached_tokens: int
    conversation_cached_tokens: int
    rest_ms: tuple[float, float, float]  # of the first token's time, outside the model: cold, chain, conversation
    samples: tuple[int, int, int]  # cold, chain, conversation

    @property
    def chain_ratio(self) -> float:
        return self.chain_s / self.cold_s

    @property
    def conversation_ratio(self) -> float:
        return self.conversation_s / self.cold_s


@dataclass(frozen=True)
class Faces:
    """Part 2: medians over the clean repetitions; ratios are Responses / Assistants."""

    assistants_s: float
    responses_s: float
    assistants_first_s: float
    responses_first_s: float
    assistants_tok_s: float | None
    responses_tok_s: float | None
    assistants_rest_ms: float  # of the first token's time, outside the model
    responses_rest_ms: float
    input_tokens: int
    output_tokens: int
    same_input: int  # repetitions whose two prompts had the same length
    same_output: int  # and whose two replies were the same text
    reps: int

    @property
    def time_ratio(self) -> float:
        return self.responses_s / self.assistants_s

    @property
    def tok_s_ratio(self) -> float | None:
        if self.assistants_tok_s is None or self.responses_tok_s is None:
            return None
        return self.responses_tok_s / self.assistants_tok_s


@dataclass(frozen=True)
class ResponsesResult:
    followups: Followups | None
    faces: Faces | None
    turns: int
    discarded: int
    backend: str

    def line(self) -> str:
        f, g = self.followups, self.faces
        parts = ["RESULT responses"]
        if f is not None:
            parts += [f"turns={self.turns}", f"cold_s={f.cold_s:.3f}", f"chain_s={f.chain_s:.3f}",
                      f"chain_ratio={f.chain_ratio:.3f}", f"conversation_s={f.conversation_s:.3f}",
                      f"conversation_ratio={f.conversation_ratio:.3f}",
                      f"input_tokens={f.cold_input_tokens}/{f.chain_input_tokens}/{f.conversation_input_tokens}",
                      f"cached_tokens={f.chain_cached_tokens}/{f.conversation_cached_tokens}",
                      "rest_ms={:.0f}/{:.0f}/{:.0f}".format(*f.rest_ms),
                      "samples={}/{}/{}".format(*f.samples)]
        if g is not None:
            parts += [f"assistants_s={g.assistants_s:.3f}", f"responses_s={g.responses_s:.3f}",
                      f"time_ratio={g.time_ratio:.3f}", f"assistants_tok_s={result_value(g.assistants_tok_s)}",
                      f"responses_tok_s={result_value(g.responses_tok_s)}",
                      f"tok_s_ratio={result_value(g.tok_s_ratio)}", f"face_tokens={g.input_tokens}/{g.output_tokens}",
                      f"face_rest_ms={g.assistants_rest_ms:.0f}/{g.responses_rest_ms:.0f}",
                      f"same_input={g.same_input}/{g.reps}", f"same_output={g.same_output}/{g.reps}"]
        return " ".join([*parts, f"discarded={self.discarded}", f"backend={self.backend}"])


def questions(n: int, seed: int = 7) -> list[str]:
    """n short user questions (at most 12 words), deterministic."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = chat_message(rng, "user").split()
        out.append(" ".join(words[:12]).rstrip("?.!") + "?")
    return out


def face_messages(seed: int, history_tokens: int, backend: ModelBackend) -> list[dict[str, str]]:
    """Chat messages of about history_tokens tokens, alternating, ending with an assistant's."""
    msgs: list[dict[str, str]] = []
    total = 0
    for role, text in conversation(seed, 10_000):
        n = len(backend.encode_message(role, text))
        if total + n > history_tokens and role == "user":
            break
        msgs.append({"role": role, "content": text})
        total += n
    return msgs


def measure(options: ResponsesOptions, backend: ModelBackend | None = None) -> ResponsesResult:
    """Both parts on `backend` (by default the model options.model names, opened as `serve` opens it)."""
    setup = options.model
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

    import openai

    from offline_assistants.api import create_app
    from offline_assistants.testing import make_engine, serve

    log("machine:", json.dumps(machine()))
    own_backend = backend is None
    model = open_bench_backend(setup) if backend is None else backend
    log(f"model {model.name}, n_ctx {model.n_ctx}, {type(model).__name__}")
    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-responses-"))
    engine = make_engine(data_dir, model)
    dropped = 0

    probe = Probe(model)

    def timed(label: str, fn: Callable[[], Streamed]) -> tuple[Streamed, bool]:
        """fn() with the load of other processes around it and the probe's figures; whether it was clean."""
        nonlocal dropped
        # --quiet-wait 0 does not wait (wait_quiet samples for a second even then): only the load meanwhile counts
        quiet = wait_quiet(setup.quiet_wait, threshold=setup.busy, label=label) if setup.quiet_wait > 0 else 0.0
        meter = OtherLoad().start()
        probe.clear()
        out = replace(fn(), model_ms=probe.model_ms, evaluated=probe.evaluated)
        others = max(quiet, meter.stop())
        clean = others < setup.busy
        dropped += not clean
        log(f"{label}: {out.describe()}; other processes {others:.2f} cores"
            f"{'' if clean else ' -> DISCARDED (contention)'}")
        return out, clean

    followups = faces = None
    try:
        with serve(create_app(engine)) as url:
            client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
            if "followups" in options.parts:
                followups = _followups(client, options, timed)
            if "faces" in options.parts:
                faces = _faces(client, options, model, timed)
    finally:
        engine.close()
        probe.close()
        if own_backend:
            model.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return ResponsesResult(followups, faces, options.turns, dropped, setup.backend if own_backend else model.name)


Timed = Callable[[str, Callable[[], Streamed]], tuple[Streamed, bool]]


def _until_clean(wanted: int, attempts: int, take: Callable[[int], tuple[Streamed, bool]]) -> list[Streamed]:
    """take(i) until `wanted` clean samples or wanted * attempts tries; the contaminated ones if none was clean."""
    clean: list[Streamed] = []
    dirty: list[Streamed] = []
    tries = 0
    while len(clean) < wanted and tries < max(1, wanted * attempts):
        s, ok = take(tries)
        (clean if ok else dirty).append(s)
        tries += 1
    if not clean:
        log("WARNING: no clean sample; using the contaminated ones")
    return clean or dirty


def _followups(client: Any, options: ResponsesOptions, timed: Timed) -> Followups:
    n = options.turns
    attempts = options.model.max_attempts
    asked = questions(n + options.followups * max(1, attempts))
    common: dict[str, Any] = {"model": MODEL, "instructions": INSTRUCTIONS, "temperature": 0,
                              "max_output_tokens": options.max_tokens}

    log(f"chain: {n} turns (max_output_tokens {options.max_tokens})")
    replies: list[str] = []
    previous: dict[str, Any] = {}
    for i in range(n):
        r = client.responses.create(input=asked[i], **previous, **common)
        replies.append(r.output_text)
        previous = {"previous_response_id": r.id}
        if (i + 1) % 10 == 0 or i + 1 == n:
            log(f"  turn {i + 1}: input {r.usage.input_tokens} tokens ({r.usage.input_tokens_details.cached_tokens} "
                f"cached), {r.status}")

    def followup(face: str, place: dict[str, Any]) -> Callable[[int], tuple[Streamed, bool]]:
        def take(j: int) -> tuple[Streamed, bool]:
            s, ok = timed(f"{face} follow-up {j + 1} (turn {n + j + 1})",
                          lambda: stream_response(client, input=asked[n + j], **place, **common))
            if "previous_response_id" in place:
                place["previous_response_id"] = s.id
            return s, ok
        return take

    chain = _until_clean(options.followups, attempts, followup("chain", dict(previous)))

    log(f"conversation: {n - 1} turns as items, turn {n} generated")
    items = [{"type": "message", "role": role, "content": text}
             for q, a in zip(asked[:n - 1], replies, strict=False) for role, text in (("user", q), ("assistant", a))]
    conv = client.conversations.create(items=items[:20])
    for k in range(20, len(items), 20):
        client.conversations.items.create(conv.id, items=items[k:k + 20])
    place = {"conversation": conv.id}
    r = client.responses.create(input=asked[n - 1], **place, **common)
    log(f"  turn {n}: input {r.usage.input_tokens} tokens, {r.status}; the chain's reply "
        f"{'the same' if r.output_text == replies[-1] else 'differs'}")
    convs = _until_clean(options.followups, attempts, followup("conversation", place))

    history = [{"role": role, "content": text}
               for q, a in zip(asked[:n], replies, strict=True) for role, text in (("user", q), ("assistant", a))]
    cold_input = [*history, {"role": "user", "content": asked[n]}]

    def cold(i: int) -> tuple[Streamed, bool]:
        s, ok = timed(f"cold {i + 1} ({len(cold_input)} input items)",
                      lambda: stream_response(client, input=cold_input, **common))
        return s, ok

    colds = _until_clean(options.cold, attempts, cold)
    result = Followups(
        cold_s=median([s.first_s for s in colds]), chain_s=median([s.first_s for s in chain]),
        conversation_s=median([s.first_s for s in convs]), cold_input_tokens=colds[0].input_tokens,
        chain_input_tokens=chain[0].input_tokens, conversation_input_tokens=convs[0].input_tokens,
        chain_cached_tokens=chain[0].cached_tokens or 0, conversation_cached_tokens=convs[0].cached_tokens or 0,
        rest_ms=(median([s.rest_ms for s in colds]), median([s.rest_ms for s in chain]),
                 median([s.rest_ms for s in convs])),
        samples=(len(colds), len(chain), len(convs)))
    log(f"median first token: cold {result.cold_s * 1e3:.0f} ms, chain follow-up {result.chain_s * 1e3:.0f} ms "
        f"({result.chain_ratio:.1%} of cold), conversation follow-up {result.conversation_s * 1e3:.0f} ms "
        f"({result.conversation_ratio:.1%}); outside the model (HTTP, rows, window, events): cold "
        "{:.0f} ms, chain {:.0f} ms, conversation {:.0f} ms".format(*result.rest_ms))
    return result


def _faces(client: Any, options: ResponsesOptions, model: ModelBackend, timed: Timed) -> Faces:
    assistant = client.beta.assistants.create(model=MODEL, instructions=INSTRUCTIONS, temperature=0)
    m = options.face_max_tokens

    def prepare(rep: int) -> tuple[str, str]:
        msgs = face_messages(1000 + rep, options.face_history_tokens, model)
        # The API takes at most 32 messages with a thread and 20 items with a conversation (or per items.create).
        thread = client.beta.threads.create(messages=msgs[:32])
        for msg in msgs[32:]:
            client.beta.threads.messages.create(thread.id, role=msg["role"], content=msg["content"])
        items = [{"type": "message", **msg} for msg in msgs]
        conv = client.conversations.create(items=items[:20])
        for k in range(20, len(items), 20):
            client.conversations.items.create(conv.id, items=items[k:k + 20])
        return thread.id, conv.id

    def ask(face: str, thread_id: str, conv_id: str, max_tokens: int) -> Streamed:
        if face == "assistants":
            return stream_run(client, thread_id, assistant.id, max_tokens, WRITE)
        return stream_response(client, model=MODEL, conversation=conv_id, input=WRITE, instructions=INSTRUCTIONS,
                               temperature=0, max_output_tokens=max_tokens)

    log("faces: warm-up (not measured)")
    t, c = prepare(-1)
    ask("assistants", t, c, 16)
    ask("responses", t, c, 16)

    pairs: list[tuple[Streamed, Streamed]] = []  # (assistants, responses), clean repetitions
    dirty: list[tuple[Streamed, Streamed]] = []
    rep = 0
    while len(pairs) < options.reps and rep < max(1, options.reps * options.model.max_attempts):
        thread_id, conv_id = prepare(rep)
        sides: dict[str, tuple[Streamed, bool]] = {}
        order = ["assistants", "responses"] if rep % 2 == 0 else ["responses", "assistants"]
        for face in order:
            sides[face] = timed(f"rep {rep + 1} {face}", lambda: ask(face, thread_id, conv_id, m))  # noqa: B023
        pair = (sides["assistants"][0], sides["responses"][0])
        (pairs if sides["assistants"][1] and sides["responses"][1] else dirty).append(pair)
        rep += 1
    if not pairs:
        log("WARNING: no clean repetition; using the contaminated ones")
        pairs = dirty

    def med(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return median(known) if known else None

    result = Faces(
        assistants_s=median([a.total_s for a, _ in pairs]), responses_s=median([r.total_s for _, r in pairs]),
        assistants_first_s=median([a.first_s for a, _ in pairs]),
        responses_first_s=median([r.first_s for _, r in pairs]),
        assistants_tok_s=med([a.tok_s for a, _ in pairs]), responses_tok_s=med([r.tok_s for _, r in pairs]),
        assistants_rest_ms=median([a.rest_ms for a, _ in pairs]),
        responses_rest_ms=median([r.rest_ms for _, r in pairs]),
        input_tokens=round(median([r.input_tokens for _, r in pairs])),
        output_tokens=round(median([r.output_tokens for _, r in pairs])),
        same_input=sum(a.input_tokens == r.input_tokens for a, r in pairs),
        same_output=sum(a.text == r.text for a, r in pairs), reps=len(pairs))
    log(f"median: assistants {result.assistants_s:.2f} s ({result_value(result.assistants_tok_s)} tok/s), "
        f"responses {result.responses_s:.2f} s ({result_value(result.responses_tok_s)} tok/s); time ratio "
        f"{result.time_ratio:.3f}, tok/s ratio {result_value(result.tok_s_ratio)}; outside the model before the first "
        f"token: assistants {result.assistants_rest_ms:.0f} ms, responses {result.responses_rest_ms:.0f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    d = ResponsesOptions()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"a short run: --followups {QUICK.followups} --cold {QUICK.cold} --reps {QUICK.reps} "
                         f"--face-max-tokens {QUICK.face_max_tokens} --quiet-wait {QUICK.model.quiet_wait:g} "
                         f"--max-attempts {QUICK.model.max_attempts}, unless given")
    ap.add_argument("--only", choices=["followups", "faces"], help="run one part (default both)")
    ap.add_argument("--turns", type=int, default=d.turns,
                    help="turns of history before the follow-ups (default %(default)s)")
    ap.add_argument("--followups", type=int, default=d.followups,
                    help="timed follow-ups on the chain and on the conversation (default %(default)s)")
    ap.add_argument("--cold", type=int, default=d.cold, help="cold samples (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=d.max_tokens,
                    help="max_output_tokens of part 1's turns (default %(default)s)")
    ap.add_argument("--reps", type=int, default=d.reps, help="part 2's repetitions (default %(default)s)")
    ap.add_argument("--face-history-tokens", type=int, default=d.face_history_tokens,
                    help="tokens of history per part 2 repetition (default %(default)s)")
    ap.add_argument("--face-max-tokens", type=int, default=d.face_max_tokens,
                    help="max tokens of part 2's replies (default %(default)s)")
    add_model_options(ap, unit="sample")
    args = ap.parse_args(argv)
    if args.quick:  # the quick values become the defaults: options given still win
        ap.set_defaults(followups=QUICK.followups, cold=QUICK.cold, reps=QUICK.reps,
                        face_max_tokens=QUICK.face_max_tokens, quiet_wait=QUICK.model.quiet_wait,
                        max_attempts=QUICK.model.max_attempts)
        args = ap.parse_args(argv)
    parts: tuple[Part, ...] = (args.only,) if args.only else d.parts
    result = measure(ResponsesOptions(
        turns=args.turns, followups=args.followups, cold=args.cold, max_tokens=args.max_tokens, reps=args.reps,
        face_history_tokens=args.face_history_tokens, face_max_tokens=args.face_max_tokens, parts=parts,
        model=ModelSetup.from_args(args)))
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
