"""retrieval/chunking.py: token limits, overlap, whitespace/sentence snapping, offsets, the auto defaults."""

from __future__ import annotations

import pydoc_data.topics
import random

import pytest

from offline_assistants.retrieval.chunking import AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS, Chunk, chunk
from offline_assistants.retrieval.tokens import count_tokens, token_spans

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()


def prose(seed: int, sentences: int) -> str:
    rng = random.Random(seed)
    out = []
    for i in range(sentences):
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 25)))
        out.append(s.capitalize() + rng.choice([".", ".", "?", "!"]))
        if i % 7 == 6:
            out.append("\n\n")
    return " ".join(out).replace(" \n\n ", "\n\n")


def overlaps(text: str, chunks: list[Chunk]) -> list[int]:
    """Tokens (in context) that each chunk shares with the one before it."""
    starts, ends, _ = token_spans(text)
    return [int(((ends > b.start) & (starts < a.end)).sum()) for a, b in zip(chunks, chunks[1:])]


def check_invariants(text: str, chunks: list[Chunk], max_tokens: int) -> None:
    assert chunks, "non-empty text gives chunks"
    for i, c in enumerate(chunks):
        assert c.index == i
        assert text[c.start:c.end] == c.text
        assert c.text == c.text.strip() and c.text
        alone = count_tokens(c.text)  # as an embedder sees it
        assert c.n_tokens <= max_tokens and alone <= max_tokens
        assert abs(alone - c.n_tokens) <= 2  # counted in context, with the first word recounted alone
        # never split a word: each edge is the text's edge or touches whitespace
        assert c.start == 0 or text[c.start - 1].isspace()
        assert c.end == len(text) or text[c.end].isspace()
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end  # progress
    # the chunks cover the text: every non-space character is in some chunk
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start:c.end] = b"\x01" * (c.end - c.start)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))


@pytest.mark.parametrize(("max_tokens", "overlap"), [(100, 0), (100, 50), (200, 37), (800, 400), (4096, 2048)])
def test_static_sizes_and_overlap(max_tokens: int, overlap: int) -> None:
    text = prose(max_tokens, 1200)
    chunks = chunk(text, max_tokens, overlap)
    check_invariants(text, chunks, max_tokens)
    shared = overlaps(text, chunks)
    for a, b, k in zip(chunks, chunks[1:], shared):
        assert k <= overlap
        if overlap == 0:
            assert b.start >= a.end
        else:
            assert b.start < a.end  # they do overlap
    # chunks are not needlessly short: every chunk but the last holds most of its allowance
    assert all(c.n_tokens >= 0.75 * max_tokens for c in chunks[:-1])
    if overlap:
        assert sum(shared) / len(shared) >= 0.6 * overlap


def test_auto_is_800_and_400() -> None:
    assert (AUTO_MAX_TOKENS, AUTO_OVERLAP_TOKENS) == (800, 400)
    text = pydoc_data.topics.topics["assignment"]
    chunks = chunk(text)
    check_invariants(text, chunks, 800)
    assert len(chunks) > 2


def test_ends_prefer_sentence_and_paragraph_boundaries() -> None:
    text = prose(1, 800)
    chunks = chunk(text, 300, 150)  # the proportions of auto: a sentence end is within reach of every cut
    ends = [c.text[-1] for c in chunks[:-1]]
    assert sum(ch in ".?!" for ch in ends) >= 0.95 * len(ends)
    starts = [c.text[0] for c in chunks]
    assert sum(ch.isupper() for ch in starts) >= 0.95 * len(starts)  # overlaps begin at sentence starts


def test_real_corpus_invariants() -> None:
    for name in ["specialnames", "formatstrings", "types", "exprlists"]:
        text = pydoc_data.topics.topics[name]
        check_invariants(text, chunk(text, 300, 100), 300)


def test_short_and_empty_texts() -> None:
    assert chunk("") == []
    assert chunk("   \n\t ") == []
    (only,) = chunk("  Just one short sentence.  \n")
    assert only.text == "Just one short sentence." and only.start == 2 and only.n_tokens == count_tokens(only.text)


def test_a_word_longer_than_a_chunk_is_cut_at_token_boundaries() -> None:
    blob = "x" * 5000
    text = f"Start here. {blob} end."
    chunks = chunk(text, 100, 0)
    assert "".join(c.text for c in chunks if "x" in c.text).count("x") == 5000
    assert all(c.n_tokens <= 100 for c in chunks)


def test_unicode_and_emoji_offsets() -> None:
    text = ("Καλημέρα κόσμε. 日本語のテキストです。 Emoji 🎉🎉 party! " * 200).strip()
    chunks = chunk(text, 120, 40)
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.n_tokens <= 120


@pytest.mark.parametrize(("max_tokens", "overlap"), [(0, 0), (100, 51), (100, -1)])
def test_nonsense_parameters_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk("some text", max_tokens, overlap)


def test_long_text_is_tokenized_in_segments_consistently() -> None:
    text = "\n".join(prose(i, 30) for i in range(150))  # > 64 KiB: several tokenizer segments
    assert len(text) > 70_000
    starts, ends, ids = token_spans(text)
    assert len(starts) == len(ends) == len(ids)
    assert (starts[1:] >= starts[:-1]).all()
    assert abs(len(ids) - count_tokens(text)) <= 5  # a segment join may differ by a token
    check_invariants(text, chunk(text, 800, 400), 800)
