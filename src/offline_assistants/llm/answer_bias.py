"""An answer held to the tool calls before it: the figures of their outputs copied whole, and no call as text.

After a tool's output a small model has two bad habits. It starts the figure right and loses it a few digits on
(the kernel printed `7006652`, the reply says `70066.52`); and it writes its last call again as the answer (a
`<tool_call>` block, or the code in a fence) instead of answering. The answer's model call carries an
`AnswerBias` (llm/backend.py): the outputs it quotes from and the openings of the run's tool calls. Before each
token, the text written so far is looked at and logits are moved:

- it ends inside a number that begins a span (a number in an output: "7006" of "7006652"): the tokens that go on
  with the span get FOLLOW, enough to win, so a number begun is copied digit for digit (its grouped form
  "7,006,652" is a span too, so a reply that groups digits keeps its commas);
- it ends with a whole span of three digits or more that no span goes on from: tokens that start with a digit lose
  STOP, so the number is not run on ("70066520");
- it ends outside a number: tokens that start a span get START, a mild nudge toward quoting a figure over making
  one up;
- nothing but space is written yet: tokens that would begin one of the call openings' marks (the punctuation
  they start with: "<" of `<tool_call>`, "```" of a code fence) are ruled out, so an answer never opens as a
  call; once the answer is written, a mark at the start of a line ends it.

The matching is on text, not token ids: an output was tokenized in its own context and the reply may split the
same digits otherwise. It runs in the model process (llm/batch.py), on the vocabulary's pieces (`Pieces`, built
once per model). Backends that apply it declare `ModelBackend.steers_answers`; others are never given one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from offline_assistants.llm.backend import AnswerBias

FOLLOW = 10.0  # logits added to a token that goes on with a span begun: enough to beat any ordinary preference
START = 1.0  # to a token that starts a span, where the text is outside a number
STOP = 5.0  # taken from tokens that start with a digit, right after a whole span that nothing continues
STOP_FROM = 3  # digits a span needs for STOP: a short one ("12") may well begin another number ("1234")

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_MARKER = re.compile(r"【[^】]*】")  # file search's citation markers: their digits are not figures
_OPEN = re.compile(r"\d[\d.,]*\Z")  # the number the text ends in (a final "." or "," included)
_MARK = re.compile(r"[^\w\s]+")  # the punctuation a call opening starts with
_LINE_START = re.compile(r"\n[ \t]*\Z")
_TAIL = 64  # characters of the text looked at: a number is shorter


class Pieces:
    """A vocabulary's token texts, indexed for the lookups below."""

    def __init__(self, pieces: Iterable[tuple[int, bytes]], ends: Iterable[int] = ()) -> None:
        self.ends = sorted(ends)  # the tokens that end a generation
        self.by_text: dict[str, list[int]] = {}
        for token, raw in pieces:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue  # part of a character: never a digit nor a mark
            if text:
                self.by_text.setdefault(text, []).append(token)
        self.longest = max((len(t) for t in self.by_text), default=0)
        self.digit_led = [t for text, tokens in self.by_text.items() if text[0].isdigit() for t in tokens]
        self._opening: dict[str, list[tuple[str, int]]] = {}

    @classmethod
    def of(cls, n_vocab: int, piece: Callable[[int], bytes], ends: Iterable[int] = ()) -> Pieces:
        return cls(((token, piece(token)) for token in range(n_vocab)), ends)

    def prefixes(self, text: str, shortest: int = 1) -> Iterable[int]:
        """Tokens whose text is a prefix of `text`, `shortest` characters long or longer."""
        for n in range(shortest, min(len(text), self.longest) + 1):
            yield from self.by_text.get(text[:n], ())

    def opening(self, mark: str) -> list[tuple[str, int]]:
        """Tokens (with their texts) that, leading space aside, begin `mark` or start with it (found once per
        mark)."""
        if mark not in self._opening:
            self._opening[mark] = [(text, t) for text, tokens in self.by_text.items()
                                   if (head := text.lstrip()) and (head.startswith(mark) or mark.startswith(head))
                                   for t in tokens]
        return self._opening[mark]


def grouped(number: str) -> str:
    """The number with its integer digits in groups of three ("7006652" -> "7,006,652")."""
    whole, dot, decimals = number.partition(".")
    return f"{int(whole):,}{dot}{decimals}"


def spans_of(sources: Iterable[str]) -> tuple[str, ...]:
    """The numbers in the sources, as written and, when they are long enough to be grouped, grouped."""
    found: dict[str, None] = {}
    for source in sources:
        for number in _NUMBER.findall(_MARKER.sub(" ", source)):
            found[number] = None
            plain = number.replace(",", "")
            whole = plain.partition(".")[0]
            if len(whole) > 3 and plain.count(".") <= 1 and not whole.startswith("0"):
                found[plain] = None
                found[grouped(plain)] = None
    return tuple(found)


def marks_of(openings: Iterable[str]) -> tuple[str, ...]:
    """The punctuation the openings start with: "<" of `<tool_call>`, "```" of a fence. Not the '{"' of the JSON
    after the tag: Qwen2.5-Coder-0.5B, kept from it too, answered "```json" and nothing else (an empty answer where
    the call it wrote held the figure), and the default model never opens with it."""
    return tuple(dict.fromkeys(m.group() for o in openings if (m := _MARK.match(o.lstrip()))))


@dataclass
class Steering:
    """The answer bias of one model call, over one vocabulary: `apply(text, logits)` before each token."""

    spans: tuple[str, ...]
    pieces: Pieces
    marks: list[int] = field(default_factory=list)  # tokens that begin a call opening's mark
    new_line_marks: list[int] = field(default_factory=list)  # those of them that begin with a line break
    starts: dict[int, float] = field(default_factory=dict)

    @classmethod
    def of(cls, answer: AnswerBias, pieces: Pieces) -> Steering | None:
        spans = spans_of(answer.copy_from)
        opening = {t: text for mark in marks_of(answer.never_open) for text, t in pieces.opening(mark)}
        marks = sorted(set(opening) - set(pieces.ends))  # `<|im_end|>` begins as `<tool_call>` does
        if not spans and not marks:
            return None
        # A bare space is not a start: in vocabularies that split digits off, it comes before every number.
        starts = {token: START for span in spans for lead, digit in ((span, 1), (" " + span, 2))
                  for token in pieces.prefixes(lead, digit)}
        return cls(spans, pieces, marks, [t for t in marks if "\n" in opening[t]], starts)

    def apply(self, text: str, logits: Any) -> None:
        """Move the logits (a numpy array over the vocabulary, changed in place) for the next token."""
        import numpy as np

        bias = self.bias(text)
        if bias:
            logits[np.fromiter(bias.keys(), dtype=np.int64)] += np.fromiter(bias.values(), dtype=logits.dtype)
        if not self.marks:
            return
        if not text.strip():  # an answer never opens as a call
            logits[self.marks] = -np.inf
            return
        # A mark at the start of a line, once the answer is written, is the model going on into a call or the
        # tool's reply (`</tool_response>`, the code's fence): it ends instead, as likely as it was to go on.
        marks = self.marks if _LINE_START.search(text) else self.new_line_marks
        if marks and self.pieces.ends:
            ends = self.pieces.ends
            logits[ends] = np.maximum(logits[ends], logits[marks].max())
            logits[marks] = -np.inf

    def bias(self, text: str) -> dict[int, float]:
        """Logits the spans add to tokens, given the text written so far."""
        tail = text[-_TAIL:]
        found = _OPEN.search(tail)
        out: dict[int, float] = {}
        if found is None:
            out.update(self.starts)
            return out
        begun = found.group()
        rests = [span[len(begun):] for span in self.spans if span.startswith(begun)]
        for rest in rests:
            for token in self.pieces.prefixes(rest):
                out[token] = FOLLOW
        if rests and not any(rests) and sum(c.isdigit() for c in begun) >= STOP_FROM:
            for token in self.pieces.digit_led:
                out[token] = -STOP
        return out
