"""Ending replies that have stopped being answers: a loop, or a run of symbols no answer contains.

A small model can fall into repeating the same phrase, or into a stream of symbols, and then never emits its
end token: it writes until the window is full. llama.cpp's repetition penalty (see llm/defaults.py) makes that
rarer; this guard ends what it misses, as a natural stop. It watches tokens as they are generated:

- **A loop**: the reply's tail repeats with some period p (in tokens) at least 3 times over 30 tokens or more,
  or a passage of 20 tokens or more comes twice in a row verbatim. Lists, tables and code repeat *shapes*, not
  whole token runs, so they are left alone: "1. apples\\n2. pears" is not periodic, and a table's separator row
  is one row.
- **A symbol run**: 12 or more characters in a row (spaces aside) that are symbols or unassigned code points of
  the kind no answer is made of: other symbols (So), private use (Co), unassigned (Cn), surrogates (Cs), the
  replacement character, and the full-width forms block; or 48 punctuation marks in a row with no letter, digit
  or space between (a table's separator row is far shorter).

A tool call written under a grammar is watched for loops only (code and JSON are made of symbols), and over a
longer stretch (CALL_LOOP_TOKENS: code may hold a short list of zeros): there the guard also says how much of
the text came before the repetition (`kept`), so the tool can close the call there (tools/closing.py).

Per token this costs one pass over the candidate periods (at most MAX_PERIOD comparisons), so it never shows
next to a decode step.
"""

from __future__ import annotations

import unicodedata

MAX_PERIOD = 100
MIN_LOOP_TOKENS = 30
CALL_LOOP_TOKENS = 64
MIN_REPEATS = 3
LONG_PERIOD = 20  # a passage this long (in tokens) said twice in a row is a loop already
SYMBOL_RUN = 12
PUNCTUATION_RUN = 48
_JUNK_CATEGORIES = {"So", "Co", "Cn", "Cs"}


def _junk(char: str) -> bool:
    if char == "\ufffd" or "\uff00" <= char <= "\uffef":
        return True
    return unicodedata.category(char) in _JUNK_CATEGORIES


class LoopGuard:
    """Feed it each generated token and its text; `tripped` says why the reply should end. The text already
    written stays as it is: streaming clients have seen it, and the stored message must equal what they saw."""

    def __init__(self, *, min_loop_tokens: int = MIN_LOOP_TOKENS, symbols: bool = True) -> None:
        self.min_loop_tokens = min_loop_tokens
        self.symbols = symbols  # watch for runs of symbols too (free text; not code or JSON)
        self.kept = 0  # once tripped by a loop: characters of the text before it repeated (one round kept)
        self._ends: list[int] = []  # the text's length after each token
        self._tokens: list[int] = []
        self._matched = [0] * (MAX_PERIOD + 1)  # per period p: how many trailing tokens equal the one p before
        self._junk_run = 0
        self._mark_run = 0  # punctuation and symbols in a row, no letters, digits or spaces between
        self.tripped: str | None = None

    def stopped(self) -> bool:
        return self.tripped is not None

    def feed(self, token: int, text: str) -> bool:
        """True when the reply should end here."""
        if self.tripped is not None:
            return True
        tokens = self._tokens
        tokens.append(token)
        self._ends.append((self._ends[-1] if self._ends else 0) + len(text))
        n = len(tokens)
        matched = self._matched
        for p in range(1, min(MAX_PERIOD, n - 1) + 1):
            matched[p] = matched[p] + 1 if tokens[-1] == tokens[-1 - p] else 0
            span = matched[p] + p  # the tail is periodic with period p over this many tokens
            if span >= self.min_loop_tokens and (span >= MIN_REPEATS * p or (p >= LONG_PERIOD and span >= 2 * p)):
                self.tripped = f"the reply repeats itself (a {p}-token loop)"
                first = n - span + p  # tokens before the repetition, and its first round
                self.kept = self._ends[first - 1] if first > 0 else 0
                return True
        if not self.symbols:
            return False
        for char in text:
            if char.isspace():
                self._mark_run = 0  # a table's separator row or a rule ends at its line
                continue
            if _junk(char):
                self._junk_run += 1
                if self._junk_run >= SYMBOL_RUN:
                    self.tripped = "the reply turned into a run of symbols"
                    return True
            else:
                self._junk_run = 0
            self._mark_run = 0 if char.isalnum() else self._mark_run + 1
            if self._mark_run >= PUNCTUATION_RUN:
                self.tripped = "the reply turned into a run of symbols"
                return True
        return False
