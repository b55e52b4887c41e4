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

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from offline_assistants.llm.backend import Decision, DecisionMaker, ModelError, Sampling, Stream, ToolOption
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.llm.toolcalls import CODE_CLOSE

StepKind = Literal["reply", "call", "code", "search", "json", "fail"]


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
    group: int = 0  # calls with the same non-zero group are made together, in one step (parallel calls)

    def describe(self) -> str:
        what = {"call": f"call {self.name}({self.text})", "fail": f"fail {self.name}"}.get(self.kind)
        return what or f"{self.kind} {self.text[:40]!r}"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        """A step as the HTTP control API takes it: {"kind": "call", "name": ..., "arguments": {...}}, ..."""
        kind = data.get("kind")
        if kind == "reply":
            return cls("reply", str(data.get("text", "")), delay_s=float(data.get("delay_s", 0)))
        if kind == "call":
            return cls("call", json.dumps(data.get("arguments") or {}), name=str(data["name"]))
        if kind == "code":
            return cls("code", str(data["code"]))
        if kind == "search":
            return cls("search", json.dumps({"query": str(data["query"])}))
        if kind == "json":
            return cls("json", json.dumps(data.get("value")))
        if kind == "fail":
            return cls("fail", str(data.get("message", "The scripted model failed.")),
                       name=str(data.get("code", "server_error")))
        raise ValueError(f"unknown step kind {kind!r}")


class _Steps:
    """The builder methods, shared by a Script and its per-thread and per-assistant scopes."""

    def _add(self, step: Step) -> Any:
        raise NotImplementedError

    def reply(self, text: str, *, delay_s: float = 0.0) -> Any:
        return self._add(Step("reply", text, delay_s=delay_s))

    def call(self, name: str, /, **arguments: Any) -> Any:
        return self._add(Step("call", json.dumps(arguments), name=name))

    def calls(self, *calls: tuple[str, dict[str, Any]]) -> Any:
        """Parallel calls, made together in one step and one requires_action."""
        group = next(_groups)
        for name, arguments in calls:
            self._add(Step("call", json.dumps(arguments), name=name, group=group))
        return self

    def code(self, source: str) -> Any:
        return self._add(Step("code", source))

    def search(self, query: str) -> Any:
        return self._add(Step("search", json.dumps({"query": query})))

    def json(self, value: Any) -> Any:
        return self._add(Step("json", json.dumps(value)))

    def fail(self, code: str = "server_error", message: str = "The scripted model failed.") -> Any:
        return self._add(Step("fail", message, name=code))


_groups = itertools.count(1)


class Script(_Steps):
    """What the model will do, step by step; builder methods return the script, so steps chain. Steps added to
    `script.thread(id)` or `script.assistant(id)` are used first for that thread or assistant, then the global
    ones."""

    def __init__(self) -> None:
        self._queues: dict[str | None, list[Step]] = {None: []}
        self.prompts: list[str] = []  # every model call's prompt, as the model saw it
        self._lock = threading.Lock()

    def thread(self, thread_id: str) -> _Scope:
        return _Scope(self, thread_id)

    def assistant(self, assistant_id: str) -> _Scope:
        return _Scope(self, assistant_id)

    def remaining(self) -> list[Step]:
        with self._lock:
            return [step for queue in self._queues.values() for step in queue]

    def clear(self) -> None:
        with self._lock:
            self._queues = {None: []}
            self.prompts.clear()

    def _add(self, step: Step, scope: str | None = None) -> Script:
        with self._lock:
            self._queues.setdefault(scope, []).append(step)
        return self

    def _queue(self, scopes: list[str | None]) -> list[Step]:
        for scope in scopes:
            queue = self._queues.get(scope)
            if queue:
                return queue
        return []

    def peek(self, scopes: list[str | None]) -> list[Step]:
        """The next step, with the rest of its parallel group."""
        with self._lock:
            queue = self._queue(scopes)
            if not queue:
                return []
            group = queue[0].group
            return [queue[0]] + (list(itertools.takewhile(lambda s: s.group == group, queue[1:]))
                                 if group else [])

    def pop(self, scopes: list[str | None]) -> Step | None:
        with self._lock:
            queue = self._queue(scopes)
            return queue.pop(0) if queue else None


class _Scope(_Steps):
    def __init__(self, script: Script, key: str) -> None:
        self.script, self.key = script, key

    def _add(self, step: Step) -> _Scope:
        self.script._add(step, self.key)
        return self


class ScriptedModel(CannedBackend):
    """The ModelBackend a Script drives (the tokenizer and streaming of llm/canned.py underneath)."""

    def __init__(self, script: Script, *, n_ctx: int = 8192) -> None:
        super().__init__(n_ctx=n_ctx)
        self.script = script
        # The assistant of a thread's active run, for assistant-scoped steps: the engine's, once attached.
        self.assistant_of: Callable[[str], str | None] = lambda thread_id: None
        self.decider = ScriptDecider(self)  # the script chooses each round's move, not option scores

    def attach(self, assistant_of: Callable[[str], str | None]) -> None:
        self.assistant_of = assistant_of

    def scopes(self, thread_id: str | None) -> list[str | None]:
        if thread_id is None:
            return [None]
        return [thread_id, self.assistant_of(thread_id), None]

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        """Unused by the engine: a script's decisions come from ScriptDecider below, not from option scores."""
        return [0.0] * len(options)

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        if len(prompt) + 1 > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        self.script.prompts.append(self.text(prompt))
        step = self.script.pop(self.scopes(cache_key))
        if step is None:
            raise ModelError(f"no scripted reply left for {cache_key or 'this run'}")
        if step.kind == "fail":
            raise ScriptedFailure(step.name, step.text)
        text = step.text + (CODE_CLOSE if step.kind == "code" else "")
        yield from self.stream(prompt, text, sampling, cancelled, delay_s=step.delay_s)


class ScriptDecider(DecisionMaker):
    """The round's move, straight from the script: which tool, and the parallel calls that go with it. A script
    that calls a function the run does not offer fails the run, saying so."""

    offers_used_tools = True  # a script may call a tool again; real models are stopped from looping on one

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model

    def choose(self, system: list[int], prompt: list[int], options: list[ToolOption | None], *,
               request: str, cache_key: str | None) -> Decision:
        self.model.script.prompts.append(self.model.text(prompt))
        steps = self.model.script.peek(self.model.scopes(cache_key))
        step = steps[0] if steps else None
        if step is None or step.kind in ("reply", "json", "fail"):
            return Decision(None if None in options else options[0], 0, exact=True)
        if step.kind in ("code", "search"):
            kind = "code_interpreter" if step.kind == "code" else "file_search"
            found = next((o for o in options if o is not None and o.type == kind), None)
            if found is None:
                raise ModelError(f"the script runs {kind}, which this run does not offer")
            return Decision(found, 0, exact=True)
        functions = {o.name: o for o in options if o is not None and o.type == "function"}
        missing = [s.name for s in steps if s.name not in functions]
        if missing:
            raise ModelError(f"the script calls {', '.join(missing)}, which this run does not offer")
        return Decision(functions[step.name], 0, also=[functions[s.name] for s in steps[1:]], exact=True)
