"""The tokenizer that file search counts tokens with: Llama-2's SentencePiece vocabulary (32,000 pieces), the
`tokenizer.json` that ships inside the wordllama wheel and is read by Hugging Face `tokenizers`.

Why this one: it is on disk with no download (wordllama's embeddings are built on it, so the counts we chunk by are
the tokens the default embedder sees), and it is fast (Rust, parallel across segments). tiktoken was the other
candidate: it is not installed, and its encodings are fetched from the network on first use, which an offline
server cannot do. The price: OpenAI counts chunk sizes in its own tokens, so "800 tokens" here is a little more
text or less than there (Llama-2 pieces run ~4 characters of English each, close to cl100k's ~4.2).

Offsets are character offsets into the str (tokenizers converts them from bytes). A SentencePiece token owns the
space before its word ("▁world" covers " world"), which chunking.py relies on when it snaps cuts to spaces.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

TOKENIZER_NAME = "llama2-sentencepiece (wordllama l2_supercat)"

# Long texts are tokenized in segments: one call on 100 MB would hold ~25 M offset tuples as Python objects at once.
# Segments are cut at line ends, so a token never straddles two (a count may differ by a token at a join).
_SEGMENT_CHARS = 1 << 16
_lock = threading.Lock()


def tokenizer_path() -> Path:
    import wordllama

    return Path(wordllama.__file__).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    """The shared Tokenizer, loaded once (~0.1 s) from the wheel; never touches the network."""
    from tokenizers import Tokenizer

    with _lock:
        tok = Tokenizer.from_file(str(tokenizer_path()))
    tok.no_padding()
    tok.no_truncation()
    return tok


def count_tokens(text: str) -> int:
    return len(tokenizer().encode(text, add_special_tokens=False).ids)


def _segments(text: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    n = len(text)
    while n - start > _SEGMENT_CHARS:
        cut = text.find("\n", start + _SEGMENT_CHARS)
        if cut == -1 or cut - start > 2 * _SEGMENT_CHARS:
            cut = text.find(" ", start + _SEGMENT_CHARS)
        if cut == -1 or cut - start > 2 * _SEGMENT_CHARS:
            cut = start + _SEGMENT_CHARS
        spans.append((start, cut))
        start = cut
    spans.append((start, n))
    return spans


def token_spans(text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """(starts, ends, ids) of every token of text: char offsets, ascending; ids for embedders that want them."""
    spans = _segments(text)
    encodings = tokenizer().encode_batch([text[a:b] for a, b in spans], add_special_tokens=False)
    starts, ends, ids = [], [], []
    for (base, _), enc in zip(spans, encodings, strict=True):
        if not enc.ids:
            continue
        off = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2) + base
        starts.append(off[:, 0])
        ends.append(off[:, 1])
        ids.append(np.asarray(enc.ids, dtype=np.int32))
    if not starts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int32)
    return np.concatenate(starts), np.concatenate(ends), np.concatenate(ids)
