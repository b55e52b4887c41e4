"""Drafts for speculative decoding, looked up in the context (prompt lookup): a reply that quotes a tool's output,
a file-search passage or the request goes on as the text it copies went on, so the tokens that followed the last
place its latest few tokens occur are a good guess at its next ones. llm/batch.py feeds the guess beside the
sampled token, in one decode, and keeps what the model agrees with: a batch of tokens costs a fraction per token
of decoding them one at a time, so each agreed token is nearly free, and a wrong guess costs the rows it added.

`Lookup` indexes every n-gram of the context as it grows (O(1) per token), so a draft costs a dict lookup, not a
scan of a 3,000-token prompt at every step. `Pace` is the draft's length: as many tokens as are worth the rows they
add, from what a row costs here (`Costs`, measured as the model decodes) and how often this reply has agreed with
its drafts, so drafting stops by itself where it does not pay (free text, or a model that copies little on a CPU
where rows are dear).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NGRAMS = (4, 3, 2)  # the suffix lengths looked up, longest first: a longer match is a surer guess
MAX_DRAFT = 8  # tokens drafted at most per step
AGREE_PRIOR = 0.7  # a drafted token's chance of being kept, before any was tried
ROW_PRIOR = 0.5  # a drafted row's cost in one-token decodes, before any was measured
PRIOR = 4.0  # how many tried tokens the priors weigh


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
class Costs:
    """What a decode costs this model on this machine, learnt as it runs: the time of a decode of m sequences'
    tokens with no draft, and of each drafted row added to it. A drafted row costs 0.6-0.8 of a one-token decode
    on a 2-core CPU (SmolLM2-135M, Qwen2.5-Coder 0.5B and 1.5B: llama.cpp computes a small batch's rows nearly one
    by one) and next to nothing on a GPU, so whether a draft pays is measured, not assumed."""

    base_ms: dict[int, float] = field(default_factory=dict)  # m sequences, one token each -> ms
    row_ms: float | None = None  # one drafted row, on top

    def decoded(self, rows: int, drafted: int, ms: float) -> None:
        base = rows - drafted
        if drafted == 0:
            self.base_ms[base] = _ema(self.base_ms.get(base), ms)
        elif base in self.base_ms:
            self.row_ms = _ema(self.row_ms, max(0.0, ms - self.base_ms[base]) / drafted)

    def step_ms(self, sequences: int) -> float | None:
        return self.base_ms.get(sequences)


def _ema(old: float | None, new: float, weight: float = 0.1) -> float:
    return new if old is None else old + weight * (new - old)


@dataclass
class Pace:
    """How many tokens one sequence drafts next: as many as are worth their rows. The k-th drafted token is kept
    only if the k-1 before it were, with probability agree^k, and saves its sequence one step of the batch
    (a decode of m sequences' tokens, shared by m); it costs one row. So the draft goes on while agree^k x step / m
    exceeds a row's cost. `agree` is this sequence's rate of agreeing with a drafted token, starting from the
    rate over every sequence so far (PRIOR drafts' worth)."""

    drafted: int = 0
    accepted: int = 0
    refused: int = 0  # drafts that stopped short: the token where the model disagreed

    def next(self, costs: Costs, sequences: int, overall: Pace) -> int:
        step = costs.step_ms(sequences)
        if step is None:
            return 0  # the batch's cost is not known yet: a plain step measures it
        row = costs.row_ms if costs.row_ms is not None else step * ROW_PRIOR
        agree = _rate(self, _rate(overall, AGREE_PRIOR, PRIOR), PRIOR)
        share = step / sequences
        k = 0
        while k < MAX_DRAFT and agree ** (k + 1) * share > row:
            k += 1
        return k

    def took(self, drafted: int, accepted: int) -> None:
        if drafted:
            self.drafted += drafted
            self.accepted += accepted
            self.refused += accepted < drafted


def _rate(pace: Pace, prior: float, weight: float) -> float:
    """Tokens agreed with over tokens tried (agreed, plus the one refused where a draft stopped short)."""
    return (pace.accepted + prior * weight) / (pace.accepted + pace.refused + weight)
