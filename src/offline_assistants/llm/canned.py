"""A canned model for unit tests of the state machine: replies are given in advance, tokens are words (apps are
tested with script.py's Script and ScriptedModel instead).

Never a stand-in for the real model in end-to-end tests; it exists so the run lifecycle (cancel, budgets,
failures, tool rounds) can be tested exactly and fast.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from offline_assistants.llm.backend import Finish, ModelError, Piece, Role, Sampling, Stream
from offline_assistants.llm.defaults import API_DEFAULTS
from offline_assistants.llm.tokens import TokenizedBackend
from offline_assistants.llm.toolcalls import WrittenCall

_WORD = re.compile(r"\S+\s*|\s+")


class WordTokenizer:
    """Words as tokens, with a plain chat format ("<user> text </s> "). Ids are given out in the order words are
    first seen, so they mean something only to this instance: a server started again on the same data recounts
    its stored messages (store/recount.py) instead of reading ids this vocabulary never gave out."""

    name = "scripted"
    sampling_defaults = API_DEFAULTS
    bos_id: int | None = None
    local = True

    def __init__(self, *, native_tool_format: str | None = None) -> None:
        self.native_tool_format = native_tool_format
        self.tokenizer_key = f"scripted-words-{uuid.uuid4().hex[:12]}"
        self._vocab: dict[str, int] = {}
        self._words: list[str] = []
        self._lock = threading.Lock()

    def word_id(self, word: str) -> int:
        with self._lock:
            if word not in self._vocab:
                self._vocab[word] = len(self._words)
                self._words.append(word)
            return self._vocab[word]

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return [self.word_id(w) for w in _WORD.findall(text)]

    def detokenize(self, tokens: list[int]) -> str:
        return "".join(self._words[t] for t in tokens)

    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        listed = "".join(f" <tool> {t['function']['name']}" for t in tools or [])
        return self.tokenize(f"<system> {text}{listed} </s> ")

    def encode_message(self, role: Role, text: str) -> list[int]:
        return self.tokenize(f"<{role}> {text} </s> ")

    def encode_exchange(self, calls: Sequence[WrittenCall], results: Sequence[str]) -> list[int]:
        written = "".join(f"<call> {c.name} {c.arguments} " for c in calls)
        replies = "".join(f"<tool> {r} </s> " for r in results)
        return self.tokenize(f"<assistant> {written}</s> {replies}")

    def encode_text(self, text: str) -> list[int]:
        return self.tokenize(text)

    def generation_prefix(self) -> list[int]:
        return self.tokenize("<assistant> ")

    def count(self, text: str) -> int:
        return len(_WORD.findall(text))


class CannedBackend(TokenizedBackend):
    """Replies given in advance (texts, or decisions' scores), streamed word by word."""

    def __init__(self, replies: list[Any] | None = None, *, n_ctx: int = 2048, delay_s: float = 0.0,
                 fail_with: str | None = None, native_tool_format: str | None = None) -> None:
        self.words = WordTokenizer(native_tool_format=native_tool_format)
        super().__init__(self.words)
        self.replies = list(replies or [])
        self.n_ctx = n_ctx
        self.delay_s = delay_s
        self.fail_with = fail_with
        self.prompts: list[list[int]] = []
        self.samplings: list[Sampling] = []
        self.scored: list[list[str]] = []  # the options of each score() call, as text
        self._decision: str | None = None  # a scripted decision that score() read and the next generate() uses
        self.started = threading.Event()

    def text(self, tokens: list[int]) -> str:
        return self.words.detokenize(tokens)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        """A scripted decision. Outside a conversation (no cache_key) the scripted model has no preference: every
        option scores 0. Otherwise the next scripted reply decides: a dict {option text: log-probability} is
        consumed and scores each option (unlisted: -10); a text such as " call get_weather.", " run Python
        code.", " search the files."
        or " answer directly." scores 0 for the options that mention that function, Python code or
        answering and -10 for the rest, and is consumed by the generation that follows the decision."""
        self.prompts.append(list(prompt))
        texts = [self.text(o) for o in options]
        self.scored.append(texts)
        if self.fail_with:
            raise ModelError(self.fail_with)
        if cache_key is None:
            return [0.0] * len(options)
        reply: Any = self.replies[0] if self.replies else " answer directly."
        if isinstance(reply, dict):
            self.replies.pop(0)
            return [float(reply.get(t, -10.0)) for t in texts]
        self._decision = reply
        return [0.0 if _mentions(t, reply) else -10.0 for t in texts]

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        if len(prompt) + 1 > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        self.prompts.append(list(prompt))
        self.samplings.append(sampling)
        self.started.set()
        if self.fail_with:
            raise ModelError(self.fail_with)
        if self._decision is not None and self.replies and self.replies[0] == self._decision:
            self.replies.pop(0)  # the decision the scores above made
        self._decision = None
        reply = self.replies.pop(0) if self.replies else "OK."
        yield from self.stream(prompt, reply, sampling, cancelled, delay_s=self.delay_s)

    def stream(self, prompt: list[int], text: str, sampling: Sampling, cancelled: Callable[[], bool], *,
               delay_s: float = 0.0) -> Stream:
        """`text` word by word as generated pieces, within the call's token limit, stopping when cancelled."""
        produced = 0
        limit = min(sampling.max_tokens, self.n_ctx - len(prompt))
        for word in _WORD.findall(text):
            if produced >= limit:
                yield Finish("length", len(prompt), produced)
                return
            if delay_s:
                time.sleep(delay_s)
            produced += 1
            yield Piece(self.words.word_id(word), word)
            if cancelled():
                yield Finish("cancelled", len(prompt), produced)
                return
        yield Finish("stop", len(prompt), produced)


def _mentions(option: str, decision: str) -> bool:
    """Whether an option's text is the one a scripted decision text names."""
    words = decision.strip().rstrip(".").split()
    if words[:1] == ["call"] and len(words) > 1:
        return re.search(rf"(?<![\w]){re.escape(words[1])}(?![\w])", option) is not None
    if "Python" in decision:
        return "Python" in option
    if "search" in decision:
        return "search" in option
    return "answer" in option
