"""Cut a file's text into overlapping chunks measured in tokens, as the API's chunking strategies describe.

`auto` is 800-token chunks with 400 tokens of overlap (OpenAI's documented default); `static` takes the two numbers
from the request. Tokens are counted with the tokenizer in tokens.py (Llama-2 SentencePiece, shipped inside the
wordllama wheel: no network), the one the default embedder sees.

Cuts never split a word. A chunk's end is pulled back from its token limit to the best boundary in the last fifth
of the chunk: a blank line, else a sentence end, else a line end; failing those, the last whitespace anywhere in
it. The next chunk starts `overlap` tokens before that end, pushed forward to a sentence start if one is near
(within the first half of the overlap) and otherwise to the next word start. So a chunk holds at most `max_tokens`
tokens and shares at most `overlap_tokens` with the one before. The one exception: a "word" longer than a chunk
(a base64 blob, a minified line, unspaced CJK text) has no whitespace to cut at and is cut at a token boundary.

Each Chunk records its text and [start, end) character offsets into the text given, so a citation can point back
into the file; `text == source[start:end]` always holds (edges are trimmed of whitespace by moving the offsets).
`n_tokens` is the chunk's count tokenized on its own, as an embedder sees it (the text is tokenized once, whole;
only a chunk's first word can tokenize differently alone, and that word is recounted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from offline_assistants.retrieval.tokens import count_tokens, token_spans

AUTO_MAX_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
# The API's own bounds (the schemas validate requests against them; chunk() only refuses nonsense).
MIN_MAX_TOKENS, MAX_MAX_TOKENS = 100, 4096


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int  # 0-based position in the file
    text: str
    start: int  # character offsets into the source text: text == source[start:end]
    end: int
    n_tokens: int
    # The chunk's token ids as tokenized in context: embeddings.embed_chunks pools them directly instead of
    # tokenizing the text again (the default embedder shares this tokenizer). None when made by hand.
    token_ids: npt.NDArray[np.int32] | None = field(default=None, repr=False, compare=False)


# Where a chunk may end, best first. Each pattern's cut is at the start of its match except sentence ends, which
# keep their punctuation (and a closing quote or bracket).
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)|[。！？]")
_LINE = re.compile(r"\n")
# Where a chunk may start: just after a sentence end or a line end (then at the first non-space).
_SENTENCE_START = re.compile(r"(?:[.!?…][\"'”’)\]]*\s+|\n\s*|[。！？]\s*)(?=\S)")
_WORD_START = re.compile(r"\s+(?=\S)")


def chunk(text: str, max_tokens: int = AUTO_MAX_TOKENS, overlap_tokens: int = AUTO_OVERLAP_TOKENS) -> list[Chunk]:
    """Chunks of text by the rules in the module docstring; [] for text that is empty or all whitespace."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError(f"overlap_tokens must be between 0 and max_tokens/2, got {overlap_tokens} for {max_tokens}")
    starts, ends, ids = token_spans(text)
    n = len(starts)
    text_end = len(text.rstrip())
    pos = _first_non_space(text, 0)
    out: list[Chunk] = []
    while pos < text_end:
        first = int(np.searchsorted(ends, pos, side="right"))  # first token reaching past pos
        extra = _first_word_extra(text, pos, starts, ends, first)
        budget = max(1, max_tokens - extra)
        if n - first <= budget:
            end = text_end
        else:
            end = _cut(text, pos, int(starts[first + budget]))
            while end > pos + 1 and text[end - 1].isspace():
                end -= 1
        last = int(np.searchsorted(starts, end, side="left"))  # tokens first..last-1 overlap [pos, end)
        out.append(Chunk(len(out), text[pos:end], pos, end, max(1, last - first + extra), ids[first:last]))
        if end >= text_end:
            break
        nxt = _next_start(text, pos, end, starts, first, last, overlap_tokens)
        # Byte-fallback pieces (an emoji is several tokens at one offset) can put the overlap's start at pos:
        # then go on without overlap rather than repeat the chunk.
        pos = nxt if nxt > pos else _first_non_space(text, end)
    return out


def _first_word_extra(text: str, pos: int, starts: np.ndarray, ends: np.ndarray, first: int) -> int:
    """How many more tokens the chunk's first word takes on its own than in context. SentencePiece gives a word
    after a newline no "▁" (the newline owns the break), but tokenized alone the text gets one prepended, which can
    split the word differently ("Gamma" vs "▁G" "amma"). Counting as the embedder will see the chunk keeps
    max_tokens a true bound."""
    if pos == 0 or text[pos - 1] == " ":
        return 0  # the in-context token already carries the "▁"
    m = re.compile(r"\S+").match(text, pos)
    word_end = m.end() if m else pos + 1
    in_context = int(np.searchsorted(starts, word_end, side="left")) - first
    return max(0, count_tokens(text[pos:word_end]) - in_context)


def _first_non_space(text: str, i: int) -> int:
    m = re.compile(r"\S").search(text, i)
    return m.start() if m else len(text)


def _cut(text: str, pos: int, hard: int) -> int:
    """Best end in (pos, hard]: text[pos:cut] is the chunk. `hard` is the start of the first token that must not
    be in it (often the space before a word: a fine cut by itself)."""
    window_start = max(pos + 1, hard - (hard - pos) // 5)
    for pattern, keep_match in ((_PARAGRAPH, False), (_SENTENCE_END, True), (_LINE, False)):
        best = -1
        for m in pattern.finditer(text, window_start, hard + 1):
            cut = m.end() if keep_match else m.start()
            if pos < cut <= hard:
                best = cut
        if best > 0:
            return best
    # Any whitespace at all: scan back from hard (rfind on a slice would copy the chunk, this stops early).
    for i in range(hard, pos, -1):
        if text[i].isspace():
            return i
    return hard  # one word longer than a chunk: split at the token boundary


def _next_start(text: str, pos: int, end: int, starts: np.ndarray, first: int, last: int, overlap: int) -> int:
    """Where the chunk after [pos, end) begins: `overlap` tokens back from end, moved forward to a word start."""
    if overlap == 0:
        return _first_non_space(text, end)
    j = max(first + 1, last - overlap)
    s = int(starts[j]) if j < len(starts) else end
    if s >= end:
        return _first_non_space(text, end)
    reach = s + max(1, (end - s) // 2)
    m = _SENTENCE_START.search(text, s, reach)
    if m and m.end() < end:
        return m.end()
    if not text[s].isspace() and s > 0 and text[s - 1].isspace():
        return s  # already at a word start
    m = _WORD_START.search(text, s, end)
    if m and m.end() < end:
        return m.end()
    return _first_non_space(text, end)  # the overlap is inside one word: no overlap rather than half a word
