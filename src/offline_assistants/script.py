"""A scripted model for testing apps: the engine, its runs, steps, events, streaming, usage and truncation are all
real; only the model's choices come from a script, consumed in order.

    script = Script()
    script.call("get_weather", city="Paris")   # the run stops in requires_action with exactly this call
    script.reply("Sunny in Paris.")             # after submit_tool_outputs, the answer, streamed word by word

Steps: `reply` (text, optionally slow), `call` (a function call with given arguments), `code` (Python that really
runs in the thread's kernel), `search` (a file_search query over the real index), `json` (a reply under
response_format), `fail` (the run fails with a chosen last_error code). When the script runs out, the run fails
with "no scripted reply left for thread_...", never with a made-up answer. `script.prompts` holds what the model
was shown for each call, rendered as text, so a test can check its instructions and tool outputs reached it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from offline_assistants.llm.backend import Finish, ModelError, Piece, Sampling
from offline_assistants.llm.scripted import ScriptedBackend

StepKind = Literal["reply", "call", "code", "search", "json", "fail"]
LOSE = -100.0  # an option the script did not choose: far below anything the decision's priors can add
CODE_FENCE_CLOSE = "\n```"


class ScriptedFailure(ModelError):
    """A failure the script asked for: the run fails with this last_error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Step:
    kind: StepKind
    text: str = ""  # reply text, call arguments (JSON), code, search query, JSON reply, failure message
    name: str = ""  # the function a call names; the last_error code of a failure
    delay_s: float = 0.0  # per word, for replies: makes cancel and expiry paths testable

    def describe(self) -> str:
        what = {"call": f"call {self.name}({self.text})", "fail": f"fail {self.name}"}.get(self.kind)
        return what or f"{self.kind} {self.text[:40]!r}"


@dataclass
class Script:
    """What the model will do, step by step. Builder methods return the script, so steps chain."""

    steps: list[Step] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)  # every model call's prompt, as the model saw it
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reply(self, text: str, *, delay_s: float = 0.0) -> Script:
        return self._add(Step("reply", text, delay_s=delay_s))

    def call(self, name: str, /, **arguments: Any) -> Script:
        return self._add(Step("call", json.dumps(arguments), name=name))

    def code(self, source: str) -> Script:
        return self._add(Step("code", source))

    def search(self, query: str) -> Script:
        return self._add(Step("search", json.dumps({"query": query})))

    def json(self, value: Any) -> Script:
        return self._add(Step("json", json.dumps(value)))

    def fail(self, code: str = "server_error", message: str = "The scripted model failed.") -> Script:
        return self._add(Step("fail", message, name=code))

    def remaining(self) -> list[Step]:
        with self._lock:
            return list(self.steps)

    def _add(self, step: Step) -> Script:
        with self._lock:
            self.steps.append(step)
        return self

    def _peek(self) -> Step | None:
        with self._lock:
            return self.steps[0] if self.steps else None

    def _pop(self) -> Step | None:
        with self._lock:
            return self.steps.pop(0) if self.steps else None


class ScriptModel(ScriptedBackend):
    """The ModelBackend a Script drives (the tokenizer and streaming of llm/scripted.py underneath)."""

    name = "scripted"

    def __init__(self, script: Script, *, n_ctx: int = 8192) -> None:
        super().__init__(n_ctx=n_ctx)
        self.script = script

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        texts = [self.text(o) for o in options]
        if cache_key is None:
            return [0.0] * len(options)  # the decision's no-request calibration: no preference
        self.script.prompts.append(self.text(prompt))
        step = self.script._peek()
        chosen = _option_for(step)
        return [0.0 if chosen(t) else LOSE for t in texts]

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Iterator[Piece | Finish]:
        if len(prompt) + 1 > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        self.script.prompts.append(self.text(prompt))
        step = self.script._pop()
        if step is None:
            raise ModelError(f"no scripted reply left for {cache_key or 'this run'}")
        if step.kind == "fail":
            raise ScriptedFailure(step.name, step.text)
        text = step.text + (CODE_FENCE_CLOSE if step.kind == "code" else "")
        yield from self._stream(prompt, text, sampling, step.delay_s, cancelled)

    def _stream(self, prompt: list[int], text: str, sampling: Sampling, delay_s: float,
                cancelled: Callable[[], bool]) -> Iterator[Piece | Finish]:
        produced = 0
        limit = min(sampling.max_tokens, self.n_ctx - len(prompt))
        for word in self.tokens(text):
            if produced >= limit:
                yield Finish("length", len(prompt), produced)
                return
            if delay_s:
                time.sleep(delay_s)
            produced += 1
            yield Piece(word, self.text([word]))
            if cancelled():
                yield Finish("cancelled", len(prompt), produced)
                return
        yield Finish("stop", len(prompt), produced)


def _option_for(step: Step | None) -> Callable[[str], bool]:
    """Which decision option (engine/decision.py's texts) a step chooses."""
    if step is None or step.kind in ("reply", "json", "fail"):
        return lambda text: "answer" in text
    if step.kind == "code":
        return lambda text: "Python" in text
    if step.kind == "search":
        return lambda text: "search the files" in text
    name = step.name
    return lambda text: text.startswith((f" use {name} ", f" use {name}.", f" call {name}."))
