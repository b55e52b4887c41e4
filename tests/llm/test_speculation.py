"""Speculative decoding by prompt lookup (llm/batch.py with llm/lookup.py) on the embedded model: the same text as
decoding token by token, at temperature 0 and when sampling with a seed, alone and among others, under a grammar,
with a cancel or a budget that lands inside a draft, and when a draft breaks the decode."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from offline_assistants.llm.backend import Finish, JsonSchema, Sampling
from offline_assistants.llm.batch import BatchedLlama
from offline_assistants.llm.catalog import default_model
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.lookup import Costs, Lookup
from offline_assistants.llm.messages import Finished, Generate, Generated, Reply

pytestmark = pytest.mark.model
PASSAGE = ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
           "the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889.")
COPY = "Repeat the following text exactly.\n\n" + PASSAGE
QUOTE = "Here is a passage:\n" + PASSAGE + "\n\nWho is the tower named after? Quote the passage."
GREEDY = Sampling(temperature=0.0, max_tokens=60, repeat_penalty=1.1)


class FreeRows(Costs):
    """Drafted rows that cost nothing: every match is drafted in full, whatever a row costs on this CPU (where the
    rule would draft little: benchmarks/speculation.py). What these tests check is the text, not the rule
    (tests/llm/test_lookup.py)."""

    def decoded(self, rows: int, drafted: int, ms: float) -> None:
        pass

    def step_ms(self, sequences: int) -> float | None:
        return 1.0


@pytest.fixture(scope="module")
def models() -> Iterator[tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]]:
    found = default_model()
    assert found is not None
    drafting = BatchedLlama(found.path, n_ctx=1024, n_threads=2, parallel=4)
    drafting.costs = FreeRows(row_ms=0.0)
    plain = BatchedLlama(found.path, n_ctx=1024, n_threads=2, parallel=4, draft=0)
    yield drafting, plain, LlamaTokenizer(found.path)
    drafting.close()
    plain.close()


def prompt(tokenizer: LlamaTokenizer, question: str) -> list[int]:
    return (tokenizer.encode_system("You are a helpful assistant.") + tokenizer.encode_message("user", question)
            + tokenizer.generation_prefix())


def run(generator: BatchedLlama, requests: dict[int, tuple[list[int], Sampling, str | None]],
        cancel_after: dict[int, int] | None = None) -> tuple[dict[int, list[int]], dict[int, Finish], int]:
    """Every request to its end: the tokens and Finish of each, and the most pieces one request got in a step."""
    tokens: dict[int, list[int]] = {req: [] for req in requests}
    finishes: dict[int, Finish] = {}
    most = 0
    for req, (ids, sampling, key) in requests.items():
        assert generator.submit(Generate(req, ids, sampling, key)) == []
    while generator.busy():
        out: list[Reply] = generator.step()
        for req in requests:
            pieces = [m.piece.token for m in out if isinstance(m, Generated) and m.req == req]
            tokens[req] += pieces
            most = max(most, len(pieces))
            if cancel_after and pieces and len(tokens[req]) >= cancel_after.get(req, 1 << 30):
                generator.cancel(req)
        finishes |= {m.req: m.finish for m in out if isinstance(m, Finished)}
    return tokens, finishes, most


def test_drafts_are_taken_and_the_text_is_the_one_token_by_token_gives(
        models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]) -> None:
    drafting, plain, tokenizer = models
    for i, question in enumerate((COPY, QUOTE)):
        ids = prompt(tokenizer, question)
        fast, finished, most = run(drafting, {i: (ids, GREEDY, None)})
        slow, _, _ = run(plain, {i: (ids, GREEDY, None)})
        assert fast[i] == slow[i] and len(fast[i]) > 20
        assert finished[i].accepted > 5 and most > 1  # drafts were kept: several tokens came from one decode


def test_among_four_each_writes_what_it_writes_alone_without_drafts(
        models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]) -> None:
    drafting, plain, tokenizer = models
    questions = [COPY, "Write a poem about the sea.", QUOTE, "Tell me about dragons."]
    requests = {10 + i: (prompt(tokenizer, q), GREEDY, None) for i, q in enumerate(questions)}
    together, finished, _ = run(drafting, requests)
    for req, request in requests.items():
        alone, _, _ = run(plain, {req: request})
        assert together[req] == alone[req]
    assert sum(f.accepted for f in finished.values()) > 10


def test_sampling_with_a_seed_draws_the_same_text(models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]) -> None:
    drafting, plain, tokenizer = models
    sampled = Sampling(temperature=0.8, top_p=0.95, max_tokens=60, seed=7, repeat_penalty=1.1)
    ids = prompt(tokenizer, COPY)
    fast, finished, _ = run(drafting, {20: (ids, sampled, None)})
    slow, _, _ = run(plain, {20: (ids, sampled, None)})
    assert fast[20] == slow[20] and finished[20].accepted > 0


def test_under_a_grammar_the_json_is_the_same(models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]) -> None:
    drafting, plain, tokenizer = models
    schema = {"type": "object", "properties": {"summary": {"type": "string"}, "year": {"type": "integer"}},
              "required": ["summary", "year"]}
    ids = prompt(tokenizer, "Reply in JSON with a summary of this passage and the year it gives.\n\n" + PASSAGE)
    for temperature in (0.0, 1.0):
        held = Sampling(temperature=temperature, max_tokens=80, constraint=JsonSchema(schema), seed=3)
        fast, _, _ = run(drafting, {30: (ids, held, None)})
        slow, _, _ = run(plain, {30: (ids, held, None)})
        assert fast[30] == slow[30]
        if len(fast[30]) < 80:  # the grammar closed the object
            assert set(json.loads(tokenizer.detokenize(fast[30]))) == {"summary", "year"}


def test_a_budget_that_ends_inside_a_draft_ends_on_its_token(
        models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]) -> None:
    drafting, plain, tokenizer = models
    ids = prompt(tokenizer, COPY)
    slow, _, _ = run(plain, {40: (ids, GREEDY, None)})
    for budget in (7, 13, 22):
        fast, finished, _ = run(drafting, {41: (ids, Sampling(temperature=0.0, max_tokens=budget,
                                                              repeat_penalty=1.1), None)})
        assert fast[41] == slow[40][:budget] and finished[41].completion_tokens == budget
        assert finished[41].reason == "length"


def test_a_cancel_mid_draft_ends_the_run_and_its_conversation_goes_on_as_without_drafts(
        models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer]) -> None:
    drafting, plain, tokenizer = models
    ids = prompt(tokenizer, COPY)
    cut, finished, _ = run(drafting, {50: (ids, GREEDY, "thread-c")}, cancel_after={50: 12})
    assert finished[50].reason == "cancelled" and finished[50].completion_tokens == len(cut[50]) >= 12
    # The next turn reuses the cells the cancelled run left: they hold its text and nothing of a refused draft, so
    # it writes what it writes after the same turn decoded token by token and ended there.
    same, _, _ = run(plain, {52: (ids, Sampling(temperature=0.0, max_tokens=len(cut[50]), repeat_penalty=1.1),
                                  "thread-p")})
    assert same[52] == cut[50]
    follow = ids + cut[50] + tokenizer.encode_message("user", "Again, please.") + tokenizer.generation_prefix()
    fast, finished, _ = run(drafting, {51: (follow, GREEDY, "thread-c")})
    assert finished[51].prompt_tokens < len(follow) // 2
    slow, _, _ = run(plain, {51: (follow, GREEDY, "thread-p")})
    assert fast[51] == slow[51]


def test_a_draft_that_breaks_the_decode_fails_no_run(models: tuple[BatchedLlama, BatchedLlama, LlamaTokenizer],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    drafting, plain, tokenizer = models
    monkeypatch.setattr(Lookup, "draft", lambda self, k: [10**9] if k else [])  # no such token: llama_decode fails
    requests = {60: (prompt(tokenizer, COPY), GREEDY, None),
                61: (prompt(tokenizer, "Tell me about dragons."), GREEDY, None)}
    fast, finished, _ = run(drafting, requests)
    for req, request in requests.items():
        slow, _, _ = run(plain, {req: request})
        assert fast[req] == slow[req] and finished[req].reason in ("stop", "length")
