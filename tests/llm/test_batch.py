"""Batched decoding (llm/batch.py) on the embedded model, driven step by step in this process: several sequences
in one decode give each the text it gets alone, prompts are evaluated in chunks beside the streams, each
sequence keeps its own grammar, prefix and parked state, and a cancel ends one without touching the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from offline_assistants.llm.backend import Finish, JsonSchema, Sampling
from offline_assistants.llm.batch import CHUNK, BatchedLlama
from offline_assistants.llm.catalog import default_model
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.lookup import MAX_DRAFT
from offline_assistants.llm.messages import Failed, Finished, Generate, Generated, Reply, Request, Score, Scored

pytestmark = pytest.mark.model
QUESTIONS = ["Write a poem about the sea.", "Describe the city of Paris.", "Tell me about dragons.",
             "Write a story about a cat."]
GREEDY = Sampling(temperature=0.0, max_tokens=40)


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[BatchedLlama, LlamaTokenizer]]:
    found = default_model()
    assert found is not None
    generator = BatchedLlama(found.path, n_ctx=1024, n_threads=2, parallel=4, kv_states=4)
    yield generator, LlamaTokenizer(found.path)
    generator.close()


def fresh(generator: BatchedLlama) -> BatchedLlama:
    """The model with no sequence or parked state holding anything: the next prompt is evaluated cold."""
    for seat in generator.seats.seats:
        generator.seats.forget(seat)
    generator.seats.parked.clear()
    return generator


@contextmanager
def no_drafts(generator: BatchedLlama) -> Iterator[None]:
    """One token per sequence and step, as the step-structure tests count them (drafts are tests/llm/
    test_speculation.py's: whether a draft is made depends on what rows cost on the machine at the moment)."""
    generator.draft = 0
    try:
        yield
    finally:
        generator.draft = MAX_DRAFT


def prompt(tokenizer: LlamaTokenizer, question: str, padding: int = 0) -> list[int]:
    system = "Be brief." + " Answer in plain words." * padding
    return tokenizer.encode_system(system) + tokenizer.encode_message("user", question) + tokenizer.generation_prefix()


def request(req: int, kind: str, tokens: list[int], body: Any, key: str | None) -> Request:
    return Generate(req, tokens, body, key) if kind == "generate" else Score(req, tokens, body, key)


def drive(generator: BatchedLlama, requests: dict[int, tuple[str, list[int], Any, str | None]],
          cancel_at: dict[int, int] | None = None) -> tuple[dict[int, list[Reply]], list[list[int]]]:
    """Submit every request, step until all have ended; each request's replies, and which requests had a piece
    in each step."""
    replies: dict[int, list[Reply]] = {req: [] for req in requests}
    for req, (kind, tokens, body, key) in requests.items():
        assert generator.submit(request(req, kind, tokens, body, key)) == []
    steps: list[list[int]] = []
    while generator.busy():
        out = generator.step()
        steps.append([m.req for m in out if isinstance(m, Generated)])
        for message in out:
            replies.setdefault(message.req, []).append(message)
            pieces = sum(1 for m in replies[message.req] if isinstance(m, Generated))
            if cancel_at and isinstance(message, Generated) and pieces == cancel_at.get(message.req):
                generator.cancel(message.req)
    return replies, steps


def text(replies: list[Reply]) -> str:
    return "".join(m.piece.text for m in replies if isinstance(m, Generated))


def finish(replies: list[Reply]) -> Finish:
    assert isinstance(replies[-1], Finished), replies[-1]
    return replies[-1].finish


def test_four_sequences_together_write_what_each_writes_alone(model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, tokenizer = model
    alone = {}
    for i, question in enumerate(QUESTIONS):
        got, _ = drive(generator, {i: ("generate", prompt(tokenizer, question), GREEDY, None)})
        alone[i] = text(got[i])
    with no_drafts(generator):  # so that the four are seen decoding side by side
        together, steps = drive(fresh(generator), {10 + i: ("generate", prompt(tokenizer, q), GREEDY, None)
                                                   for i, q in enumerate(QUESTIONS)})
    assert {i: text(together[10 + i]) for i in range(4)} == alone and all(alone.values())
    assert max(len(s) for s in steps) == 4  # one decode carried a token of each


def test_a_cold_prompt_is_evaluated_in_chunks_beside_the_streams(model: tuple[BatchedLlama, LlamaTokenizer]
                                                                 ) -> None:
    generator, tokenizer = model
    long = prompt(tokenizer, "Summarise the rules.", padding=90)
    assert len(long) > 3 * CHUNK
    with no_drafts(generator):  # the streams write a token a step, and outlive the long prompt
        alone, _ = drive(generator, {1: ("generate", long, GREEDY, None)})
        streams = {20 + i: ("generate", prompt(tokenizer, q), Sampling(temperature=0.0, max_tokens=60), None)
                   for i, q in enumerate(QUESTIONS[:3])}
        for req, (kind, tokens, body, key) in streams.items():
            generator.submit(request(req, kind, tokens, body, key))
        for _ in range(6):  # the three are streaming when the long prompt arrives
            generator.step()
        for seat in generator.seats.seats:  # the long prompt comes cold again: no cells of it are kept
            if not seat.busy:
                generator.seats.forget(seat)
        together, steps = drive(generator, {2: ("generate", long, GREEDY, None)})
        assert text(together[2]) == text(alone[1])
        # While its prompt was evaluated (one chunk per step of its own), the streams had the steps in between: never
        # two steps in a row without a token, and at least as many steps with tokens as without.
        before_first = steps[: next(i for i, s in enumerate(steps) if 2 in s)]
        empty = [not s for s in before_first]
        assert sum(empty) >= len(long) // CHUNK and not any(a and b for a, b in zip(empty, empty[1:]))
        assert len(before_first) - sum(empty) >= sum(empty)


def test_each_sequence_keeps_its_own_grammar(model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, tokenizer = model
    schemas = [{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
               {"type": "object", "properties": {"colour": {"type": "string", "enum": ["red", "blue"]}},
                "required": ["colour"]}]
    requests = {30 + i: ("generate", prompt(tokenizer, "Reply in JSON."),
                         Sampling(temperature=1.0, max_tokens=40, constraint=JsonSchema(s)), None)
                for i, s in enumerate(schemas)}
    requests[32] = ("generate", prompt(tokenizer, QUESTIONS[0]), GREEDY, None)
    replies, _ = drive(generator, requests)
    assert isinstance(json.loads(text(replies[30]))["n"], int)
    assert json.loads(text(replies[31]))["colour"] in ("red", "blue")
    assert not text(replies[32]).lstrip().startswith("{")


def test_a_conversation_keeps_its_prefix_across_others_and_parking(model: tuple[BatchedLlama, LlamaTokenizer]
                                                                   ) -> None:
    generator, tokenizer = model
    first = prompt(tokenizer, QUESTIONS[0])
    replies, _ = drive(fresh(generator), {40: ("generate", first, GREEDY, "thread-a")})
    assert finish(replies[40]).prompt_tokens == len(first)  # cold: every prompt token evaluated
    follow = first + [m.piece.token for m in replies[40] if isinstance(m, Generated)] + tokenizer.encode_message(
        "user", "More.")
    # Six other conversations take every sequence, so thread-a's cells are parked and later copied back.
    for n in range(6):
        drive(generator, {50 + n: ("generate", prompt(tokenizer, f"Say {n}."), Sampling(temperature=0.0,
                                                                                   max_tokens=2), f"other-{n}")})
    again, _ = drive(generator, {41: ("generate", follow, GREEDY, "thread-a")})
    pieces = sum(1 for m in replies[40] if isinstance(m, Generated))
    held = len(first) + pieces - (finish(replies[40]).reason == "length")  # a last token sampled is never fed
    assert finish(again[41]).prompt_tokens == len(follow) - held < len(follow) // 2


def test_a_new_conversation_starts_from_another_ones_system_turn_and_writes_what_it_writes_cold(
        model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, tokenizer = model
    mine, other = prompt(tokenizer, QUESTIONS[2], padding=12), prompt(tokenizer, QUESTIONS[3], padding=12)
    cold, _ = drive(fresh(generator), {90: ("generate", mine, GREEDY, "thread-x")})
    assert finish(cold[90]).prompt_tokens == len(mine)
    drive(fresh(generator), {91: ("generate", other, GREEDY, "thread-y")})
    reused, _ = drive(generator, {92: ("generate", mine, GREEDY, "thread-z")})
    system = generator.seats.turn_end(mine)
    assert 0 < system < len(mine) and other[:system] == mine[:system]
    assert finish(reused[92]).prompt_tokens == len(mine) - system  # the system turn's cells were copied
    assert text(reused[92]) == text(cold[90])  # and are the very cells a cold start makes


def test_cancelling_one_leaves_the_others_as_they_were(model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, tokenizer = model
    requests = {60 + i: ("generate", prompt(tokenizer, q), GREEDY, None) for i, q in enumerate(QUESTIONS)}
    alone, _ = drive(generator, dict(requests))
    cancelled, _ = drive(generator, {70 + i: r for i, r in enumerate(requests.values())}, cancel_at={71: 3})
    assert finish(cancelled[71]).reason == "cancelled" and finish(cancelled[71]).completion_tokens == 3
    for i in (0, 2, 3):
        assert text(cancelled[70 + i]) == text(alone[60 + i])


def test_scores_in_a_batch_equal_scores_alone(model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, tokenizer = model
    lead = prompt(tokenizer, "What is 17 times 23?") + tokenizer.encode_text("I will")
    options = [tokenizer.encode_text(t) for t in (" answer from what I already know.",
                                                  " run Python code to compute it.", " x")]
    alone, _ = drive(generator, {80: ("score", lead, options, None)})
    together, _ = drive(generator, {81: ("score", lead, options, None),
                                    82: ("generate", prompt(tokenizer, QUESTIONS[1]), GREEDY, None),
                                    83: ("generate", prompt(tokenizer, QUESTIONS[2]), GREEDY, None)})
    scores = alone[80][0]
    assert isinstance(scores, Scored)
    assert together[81] == [Scored(81, scores.scores)]
    assert len(scores.scores) == 3 and max(scores.scores) < 0


def test_a_prompt_that_does_not_fit_is_refused_at_once(model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, _ = model
    reply = generator.submit(Generate(90, [1] * 2000, GREEDY, None))
    assert reply and isinstance(reply[0], Failed) and "does not fit" in reply[0].message
    assert not generator.busy()


def test_options_on_several_sequences_score_as_one_at_a_time(model: tuple[BatchedLlama, LlamaTokenizer]) -> None:
    generator, tokenizer = model
    lead = prompt(tokenizer, "What's the weather in Paris?", padding=3) + tokenizer.encode_text("I will")
    options = [tokenizer.encode_text(t) for t in (
        " answer from what I already know.", " run Python code to compute it.",
        " use get_weather to get the current weather.", " x")]
    one, singly = drive(fresh(generator), {100: ("score", lead, options, "thread-s")})
    generator.score_width = 4
    try:
        wide, steps = drive(fresh(generator), {101: ("score", lead, options, "thread-s")})
    finally:
        generator.score_width = 1
    first, second = one[100][0], wide[101][0]
    assert isinstance(first, Scored) and isinstance(second, Scored)
    assert second.scores == pytest.approx(first.scores, abs=1e-3)
    assert len(singly) - len(steps) == 2  # the three longer options in one decode, not three
    # The sequences that held the options keep the prompt: the next conversation of the same system starts there.
    assert sum(seat.tokens == lead for seat in generator.seats.seats) == 3
