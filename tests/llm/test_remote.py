"""The remote backend (llm/remote.py) against a real llama-cpp-python server on the embedded model: what the probe
finds, exact token counts, streaming, constraints, scores, cancel. Each is checked against the local backend on
the same GGUF where the two must agree."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from upstream_servers import gguf

from offline_assistants.llm.backend import Choice, CodeBlock, Finish, JsonSchema, Piece, Sampling
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.remote import RemoteBackend
from offline_assistants.llm.remote_loading import connect

TEXTS = ["Hello, world!", "  leading spaces and\ttabs\n\nnew lines", "naïve café ☕ 東京 🎉", "x = [1, 2, 3]  # code",
         "a <|im_end|> inside", ""]


@pytest.fixture(scope="module")
def remote(llama_cpp_upstream: Any) -> Iterator[RemoteBackend]:
    backend = connect(llama_cpp_upstream.url, n_ctx=2048)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def local_tokens() -> LlamaTokenizer:
    return LlamaTokenizer(gguf())


def _prompt(backend: Any, request: str) -> list[int]:
    return (backend.encode_system("You are brief.") + backend.encode_message("user", request)
            + backend.generation_prefix())


def _generate(backend: Any, prompt: list[int], **sampling: Any) -> tuple[str, list[Piece], Finish]:
    items = list(backend.generate(prompt, Sampling(**{"temperature": 0.0, "max_tokens": 16, **sampling})))
    finish = items[-1]
    assert isinstance(finish, Finish)
    pieces = [i for i in items[:-1] if isinstance(i, Piece)]
    return "".join(p.text for p in pieces), pieces, finish


def test_the_probe_finds_what_llama_cpp_pythons_server_supports(remote: RemoteBackend) -> None:
    info = remote.info
    assert (info.kind, info.model, info.token_prompts, info.constraints, info.scoring) == (
        "llama-cpp-python", "smollm2", False, "gbnf", "forced")
    assert not remote.parallel and remote.n_ctx == 2048  # it runs one request at a time: one worker
    assert remote.tokenizer.specials == {1: "<|im_start|>", 2: "<|im_end|>"}


def test_the_servers_tokenizer_counts_exactly_as_the_local_gguf(remote: RemoteBackend,
                                                                local_tokens: LlamaTokenizer) -> None:
    for text in TEXTS:
        assert remote.encode_text(text) == local_tokens.encode_text(text), text
        assert remote.encode_message("user", text) == local_tokens.encode_message("user", text), text
    assert remote.encode_system("Be brief.") == local_tokens.encode_system("Be brief.")
    assert remote.generation_prefix() == local_tokens.generation_prefix()


def test_a_prompt_goes_as_text_that_tokenizes_back_to_the_same_ids(remote: RemoteBackend,
                                                                   local_tokens: LlamaTokenizer) -> None:
    prompt = _prompt(remote, "naïve café ☕: say <b>hi</b>")
    text = remote.request_prompt(prompt)
    assert isinstance(text, str) and text.startswith("<|im_start|>system\nYou are brief.<|im_end|>")
    assert local_tokens.tokenize(text) == prompt


def test_greedy_generation_matches_the_local_model(remote: RemoteBackend, real_backend: Any) -> None:
    prompt = _prompt(remote, "Name three colors.")
    assert prompt == _prompt(real_backend, "Name three colors.")
    text, pieces, finish = _generate(remote, prompt, max_tokens=12)
    local_text, _local_pieces, _ = _generate(real_backend, prompt, max_tokens=12)
    assert text == local_text and text.strip()
    # Pieces streamed with stand-in ids; the Finish has the reply's real ids, as the local tokenizer gives them.
    assert finish.tokens is not None and list(finish.tokens) == real_backend.encode_text(text)
    assert finish.reason == "length" and finish.completion_tokens == len(finish.tokens) == len(pieces)


def test_a_choice_json_schema_and_code_block_are_enforced(remote: RemoteBackend) -> None:
    prompt = _prompt(remote, "Pick one.")
    text, _, _ = _generate(remote, prompt, temperature=1.0, constraint=Choice(("qqq zzz", "www yyy")))
    assert text in ("qqq zzz", "www yyy")
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
              "required": ["city", "days"]}
    text, _, _ = _generate(remote, _prompt(remote, "Weather in Paris for 3 days, as JSON."), temperature=1.0,
                           max_tokens=48, constraint=JsonSchema(schema))
    value = json.loads(text)
    assert isinstance(value["city"], str) and isinstance(value["days"], int)
    code_prompt = _prompt(remote, "Print 2+2 in Python.") + remote.encode_text("```python\n")
    text, _, finish = _generate(remote, code_prompt, max_tokens=64, constraint=CodeBlock())
    assert finish.reason == "stop" and text.endswith("\n```") and "`" not in text[:-4]


@pytest.mark.parametrize("style", ["forced", "echo"])
def test_scores_match_the_local_models_log_probabilities(remote: RemoteBackend, real_backend: Any,
                                                         style: str) -> None:
    """forced (a grammar of the option's token ids) is what the probe picks; echo (prompt log-probabilities) is
    the way for a llama-cpp-python whose llama.cpp has no token grammars. Both give the option's likelihood."""
    backend = RemoteBackend(remote.upstream, dataclasses.replace(remote.info, scoring=style), remote.tokenizer,
                            n_ctx=remote.n_ctx)
    prompt = _prompt(remote, "What is 17 times 23?") + remote.encode_text("I will")
    options = [remote.encode_text(t) for t in (" answer from what I already know.", " run Python code to compute it.",
                                               " use get_weather to get the weather.")]
    here, there = backend.score(prompt, options), real_backend.score(prompt, options)
    # The same weights, other CPU kernels (thread counts, repacking): equal to a few tenths of a nat.
    assert all(abs(a - b) < 0.5 for a, b in zip(here, there)), (here, there)
    assert max(range(3), key=here.__getitem__) == max(range(3), key=there.__getitem__)


def test_cancel_closes_the_upstream_request_so_the_server_stops(remote: RemoteBackend) -> None:
    # Under this grammar the model cannot stop before 300 words: only a closed request ends it early.
    long = Choice((" word" * 300,))
    seen = 0

    def cancelled() -> bool:
        return seen >= 3

    finish = None
    for item in remote.generate(_prompt(remote, "Go."), Sampling(temperature=0.0, max_tokens=400, constraint=long),
                                cancelled=cancelled):
        if isinstance(item, Piece):
            seen += 1
        else:
            finish = item
    assert finish is not None and finish.reason == "cancelled" and seen == 3
    # The server runs one request at a time: had it gone on writing the other 297 words (seconds on these
    # cores), this call would wait for them.
    started = time.monotonic()
    _generate(remote, _prompt(remote, "Hi."), max_tokens=1)
    assert time.monotonic() - started < 2.0


def test_a_local_tokenizer_file_gives_real_ids_while_streaming(llama_cpp_upstream: Any, real_backend: Any) -> None:
    backend = connect(llama_cpp_upstream.url, tokenizer=gguf(), n_ctx=2048)
    try:
        assert backend.tokenizer_key == real_backend.tokenizer_key  # the same GGUF: stored counts stay valid
        text, pieces, finish = _generate(backend, _prompt(backend, "Name a fruit."), max_tokens=8)
        assert finish.tokens is None and all(p.token >= 0 for p in pieces)
        assert [p.token for p in pieces] == real_backend.encode_text(text)
    finally:
        backend.close()
