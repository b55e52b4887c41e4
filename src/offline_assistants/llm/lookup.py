"""Drafts for speculative decoding, looked up in the context (prompt lookup): a reply that quotes a tool's output,
a file-search passage or the request goes on as the text it copies went on, so the tokens that followed the last
place its latest few tokens occur are a good guess at its next ones. llm/batch.py feeds the guess beside the
sampled token, in one decode, and keeps what the model agrees with: a batch of tokens costs a fraction per token
of decoding them one at a time, so each agreed token is nearly free, and a wrong guess costs the rows it added.

`Lookup` indexes every n-gram of the context as it grows (O(1) per token), so a draft costs a dict lookup, not a
scan of a 3,000-token prompt at every step. `Pace` is the draft's length: it grows while drafts are taken whole,
shrinks when they are not, and drafting pauses after misses in a row, so free text (where nothing matches, or
matches lead nowhere) pays almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NGRAMS = (4, 3, 2)  # the suffix lengths looked up, longest first: a longer match is a surer guess
MAX_DRAFT = 8  # tokens drafted at most per step
PAUSE = 16  # tokens decoded without drafting after MISSES drafts in a row that were wholly refused
MISSES = 3


@dataclass
class Lookup:
    """The context's n-grams and where each last began; `draft` continues the context's current suffix."""

    tokens: list[int] = field(default_factory=list)
    _last: dict[tuple[int, ...], int] = field(default_factory=dict)  # n-gram -> start of its latest occurrence
    _match: dict[int, int] = field(default_factory=dict)  # n -> where the current suffix of length n began before

    @classmethod
    def of(cls, tokens: list[int]) -> Lookup:
        lookup = cls()
        lookup.extend(tokens)
        return lookup

    def extend(self, tokens: list[int]) -> None:
        for token in tokens:
            self.tokens.append(token)
            end = len(self.tokens)
            for n in NGRAMS:
                if end < n:
                    continue
                gram = tuple(self.tokens[end - n:])
                previous = self._last.get(gram)
                if previous is None:
                    self._match.pop(n, None)
                else:
                    self._match[n] = previous
                self._last[gram] = end - n

    def draft(self, k: int) -> list[int]:
        """Up to k tokens that followed the latest earlier occurrence of the context's longest matching suffix."""
        if k <= 0:
            return []
        for n in NGRAMS:
            start = self._match.get(n)
            if start is not None:
                return self.tokens[start + n: start + n + k]
        return []


@dataclass
class Pace:
    """How many tokens to draft next, from how the last drafts fared."""

    size: int = 4
    misses: int = 0
    paused: int = 0
    drafted: int = 0
    accepted: int = 0

    def next(self) -> int:
        if self.paused > 0:
            self.paused -= 1
            return 0
        return self.size

    def took(self, drafted: int, accepted: int) -> None:
        if drafted == 0:
            return
        self.drafted += drafted
        self.accepted += accepted
        if accepted == drafted:
            self.size, self.misses = min(MAX_DRAFT, self.size * 2), 0
        elif accepted == 0:
            self.size = max(1, self.size // 2)
            self.misses += 1
            if self.misses >= MISSES:
                self.paused, self.misses = PAUSE, 0
        else:
            self.size, self.misses = max(1, accepted + 1), 0
