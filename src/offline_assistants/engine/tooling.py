"""Tool calling inside a run: decide, write the call, run the tool (or hand the call to the client), loop.

Each round the model first chooses between the tools it may use and answering, by scoring each option
(engine/decision.py); the chosen tool (a plug-in, tools/base.py) then says how its call opens and what the
body is held to, and the model writes the call under that constraint. Code interpreter calls run here, in the
thread's Jupyter kernel; function calls stop the run in `requires_action` until the client submits the outputs,
after which the run resumes from what its steps recorded. Each call and its result join the prompt of the next
round (Turn.exchanges). A round's outcome is one of three small values: Answer, ToolRan, AwaitOutputs.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from offline_assistants.engine.decision import Decider
from offline_assistants.engine.lifecycle import Lifecycle
from offline_assistants.engine.model_calls import ModelCalls
from offline_assistants.engine.turn import DEFAULT_SYSTEM, Budget, Exchange, Turn
from offline_assistants.ids import new_id, now
from offline_assistants.llm.backend import Decision, DecisionMaker, ModelBackend
from offline_assistants.llm.toolcalls import NATIVE_MARKERS, parse_native
from offline_assistants.store import Store
from offline_assistants.tools.base import Ran, Tool, ToolContext
from offline_assistants.tools.code_interpreter.tool import code_text
from offline_assistants.tools.functions import FunctionTool

log = logging.getLogger(__name__)

MAX_CALL_TOKENS = 512
CODE_TOOL = "python"  # the name code_interpreter goes by when a template lists tools as functions


@dataclass(frozen=True)
class Answer:
    """Answer in text. `text`/`tokens`: what the model already began of it (a native model's peek)."""

    text: str = ""
    tokens: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ToolRan:
    """A tool ran in the server: go round again."""


@dataclass(frozen=True)
class AwaitOutputs:
    """The run waits in requires_action for the client's tool outputs."""


Outcome = Answer | ToolRan | AwaitOutputs


class ToolCalling:
    def __init__(self, backend: ModelBackend, store: Store, lifecycle: Lifecycle, model_calls: ModelCalls,
                 tools: Mapping[str, Tool], save_output: Callable[[bytes, str], str], *,
                 max_rounds: int, stores_for: Callable[[str, str, dict[str, Any] | None], list[str]] = (
                     lambda assistant_id, thread_id, resources: []),
                 files_hold: Callable[[list[str], str], int] = lambda store_ids, request: 0,
                 decider: DecisionMaker | None = None) -> None:
        self.backend = backend
        self.store = store
        self.lifecycle = lifecycle
        self.model_calls = model_calls
        self.tools = tools  # by the API's tool type; a type missing here is not offered to the model
        self.save_output = save_output
        self.max_rounds = max_rounds
        self.stores_for = stores_for  # the live vector stores a run's file search reads
        self.files_hold = files_hold  # how many of a request's words those stores hold (engine/decision.py)
        # engine/decision.py: answer, code, or which function; a scripted model brings its own (script.py).
        self.decider: DecisionMaker = decider or Decider(backend)

    # --- per run ---
    def prepare(self, turn: Turn) -> None:
        """The run's usable tools, the system prompt that describes them, and (on resume) its earlier calls."""
        run = turn.run
        turn.tools = [t for t in run.tools if t["type"] in self.tools
                      and (t["type"] != "file_search" or self.vector_store_ids(turn))]
        turn.tool_choice = run.tool_choice or "auto"
        if not turn.tools or turn.tool_choice == "none":
            turn.tools = []
            return
        turn.call_openings = tuple(self.tools[t["type"]].opening(t) for t in turn.tools)
        instructions = run.instructions or DEFAULT_SYSTEM
        if self.backend.native_tool_format:
            turn.system = self.backend.encode_system(instructions, tools=function_specs(turn.tools))
        else:
            turn.system = self.backend.encode_system(instructions + self._describe(turn.tools))
        self._replay(turn)

    def _describe(self, tools: list[dict[str, Any]]) -> str:
        lines = ["", "", "You can use these tools:"]
        lines += [self.tools[t["type"]].describe(t) for t in tools]
        lines.append("Use a tool when it helps, then answer the user from its result.")
        return "\n".join(lines)

    def _replay(self, turn: Turn) -> None:
        """Rebuild the in-run transcript from the run's tool steps (a run resumed after submit_tool_outputs)."""
        for step in self.store.runs.tool_steps(turn.run_id):
            turn.tool_rounds += 1
            for call in step.step_details["tool_calls"]:
                turn.used_tools.add(_key(call))
                tool = self.tools.get(call["type"])
                if tool is not None:
                    self._exchange(turn, *tool.transcript(call))
            if step.status == "in_progress":
                self.lifecycle.close_step(turn.run_id, step.id, "completed")

    def _exchange(self, turn: Turn, call: str, result: str) -> None:
        turn.exchanges.append(Exchange(self.backend.encode_message("assistant", call)
                                       + self.backend.encode_message("tool", result), result))

    def _request(self, turn: Turn) -> str:
        if turn.request is None:
            turn.request = self.store.messages.latest_text(turn.thread_id)
        return turn.request

    # --- per round ---
    def round(self, turn: Turn, prompt: list[int], budget: Budget) -> Outcome:
        """Make the round's tool calls if the model (or tool_choice) wants any; otherwise answer."""
        if not turn.tools or turn.tool_rounds >= self.max_rounds:
            return Answer()
        if self.backend.native_tool_format and turn.tool_choice == "auto":
            return self._native(turn, prompt, budget)
        forced = self._forced(turn)
        decision = Decision(forced, 0) if forced is not None else self._decide(turn, prompt, budget)
        if decision.tool is None:
            return Answer()
        turn.tool_rounds += 1
        turn.used_tools.add(_key(decision.tool))
        turn.last_call_failed = False
        also = decision.also if turn.run.parallel_tool_calls and decision.tool["type"] == "function" else []
        return self._calls(turn, prompt, budget, [decision.tool, *also], infer=not decision.exact)

    def _forced(self, turn: Turn) -> dict[str, Any] | None:
        choice = turn.tool_choice
        if turn.tool_rounds > 0 or not isinstance(choice, dict):
            return None
        if choice["type"] == "function":
            return next((t for t in turn.tools if t["type"] == "function"
                         and t["function"]["name"] == choice["function"]["name"]), None)
        return next((t for t in turn.tools if t["type"] == choice["type"]), None)

    def _decide(self, turn: Turn, prompt: list[int], budget: Budget) -> Decision:
        options: list[dict[str, Any] | None] = []
        offer_all = self.decider.offers_used_tools  # a script's may call a tool again; real models may not
        for tool in turn.tools:
            # A tool already used in this run is offered again only to retry failed code, once: small models
            # otherwise repeat the same call until the round limit.
            retry = tool["type"] == "code_interpreter" and turn.last_call_failed and turn.tool_rounds < 2
            if offer_all or _key(tool) not in turn.used_tools or retry:
                options.append(tool)
        if not (turn.tool_choice == "required" and turn.tool_rounds == 0):
            options.append(None)  # answering
        if len(options) <= 1:
            return Decision(options[0] if options else None, 0)
        request = self._request(turn)
        holds = (self.files_hold(self.vector_store_ids(turn), request)
                 if any(o is not None and o["type"] == "file_search" for o in options) else 0)
        decision = self.decider.choose(turn.system, prompt, options, request=request, cache_key=turn.thread_id,
                                       files_hold=holds)
        self.model_calls.add_usage(turn, budget, decision.read, 0)
        return decision

    def _calls(self, turn: Turn, prompt: list[int], budget: Budget, specs: list[dict[str, Any]], *,
               infer: bool = True) -> Outcome:
        """Write the round's calls into one step, each under its tool's constraint; run what the server runs.

        With parallel tool calls, a function may add a second call of itself when the request joins another
        value to one the first call quoted ("in Paris and in Rome"); the decision may have added a different
        function already.
        """
        request = self._request(turn)
        pending: list[tuple[dict[str, Any], dict[str, Any]]] = [(spec, {}) for spec in specs]
        step = self._open_step(turn, [self.tools[s["type"]].entry(s) for s in specs])
        usage = [0, 0]
        written = prompt
        for i, (spec, fixed) in enumerate(pending):  # grows by at most one while it runs (see below)
            tool = self.tools[spec["type"]]
            writer = tool.writer(step.emitter(i))
            out = self.model_calls.generate(
                turn, written + self.backend.encode_text(tool.opening(spec)), budget,
                constraint=tool.constraint(spec, request, fixed), max_tokens=MAX_CALL_TOKENS, on_piece=writer.feed)
            usage[0] += out.read
            usage[1] += out.written
            out.check()
            tool.record(step.calls[i], writer.finish())
            call_text, _ = tool.transcript(step.calls[i])
            written = written + self.backend.encode_text(call_text + "\n")
            if infer and len(pending) == 1 and turn.run.parallel_tool_calls and isinstance(tool, FunctionTool):
                other = tool.again(spec, step.calls[i]["function"]["arguments"], request)
                if other is not None:
                    pending.append((spec, other))
                    step.add(tool.entry(spec))
        if specs[0]["type"] != "function":  # code and file search run here, alone in their step
            return self._run_server(turn, step, usage, specs[0])
        self._require(turn, step, usage)
        return AwaitOutputs()

    def _run_server(self, turn: Turn, step: _StepStream, usage: list[int], spec: dict[str, Any]) -> ToolRan:
        tool = self.tools[spec["type"]]
        context = ToolContext(
            turn.thread_id,
            input_files=lambda: self.store.files.code_inputs(turn.run.assistant_id, turn.thread_id,
                                                             turn.tool_resources),
            save_output=self.save_output,
            vector_store_ids=lambda: self.vector_store_ids(turn),
            round=len(turn.exchanges))
        ran = tool.run(context, spec, step.calls[0])
        assert isinstance(ran, Ran)
        turn.last_call_failed = ran.failed
        turn.output_files += ran.files
        turn.citations += ran.citations
        outputs = (ran.entry.get("code_interpreter") or {}).get("outputs")
        if outputs:
            step.delta(0, {"code_interpreter": {"outputs": [dict(o, index=i) for i, o in enumerate(outputs)]}})
        step.calls[0] = dict(ran.entry, id=step.calls[0]["id"])
        step.finish(usage)
        self._exchange(turn, tool.transcript(step.calls[0])[0], ran.result)
        return ToolRan()

    def vector_store_ids(self, turn: Turn) -> list[str]:
        if turn.vector_store_ids is None:
            turn.vector_store_ids = self.stores_for(turn.run.assistant_id, turn.thread_id, turn.tool_resources)
        return turn.vector_store_ids

    def _require(self, turn: Turn, step: _StepStream, usage: list[int]) -> None:
        """Stop the run until the client submits the outputs of the step's function calls."""
        self.store.runs.update_step(step.id, {"step_details": step.details(), "usage": _usage(*usage)})
        required = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
            for c in step.calls]}}
        self.lifecycle.settle(turn.run_id, "requires_action", {"required_action": required})

    # --- native tool-call syntax ---
    def _native(self, turn: Turn, prompt: list[int], budget: Budget) -> Outcome:
        """Let a model whose template defines tool calls write freely; peek at its first tokens to see whether it
        is starting a call. An answer goes back to the executor as the opening of its message."""
        marker = NATIVE_MARKERS[self.backend.native_tool_format]  # type: ignore[index]
        calling = False

        def peek(text: str) -> bool:  # stop reading as soon as the text cannot be the start of a call
            nonlocal calling
            head = text.lstrip()
            if not calling and head.startswith(marker):
                calling = True
            return not calling and bool(head) and not marker.startswith(head)

        out = self.model_calls.generate(turn, prompt, budget, constraint=turn.response_format,
                                        max_tokens=MAX_CALL_TOKENS, peek=peek, count=False)
        if out.ending == "cancelled":
            out.check()
        if not calling:
            return Answer(out.text, out.tokens)  # counted when the executor continues it as the message
        names = {t["function"]["name"]: t for t in turn.tools if t["type"] == "function"}
        calls = [c for c in parse_native(out.text, self.backend.native_tool_format)  # type: ignore[arg-type]
                 if c.name in names or c.name == CODE_TOOL]
        if not calls:
            return Answer(out.text, out.tokens)  # not a call we can honour: keep what it wrote as the answer
        self.model_calls.add_usage(turn, budget, len(prompt), len(out.tokens))
        usage = [len(prompt), len(out.tokens)]
        turn.tool_rounds += 1
        if calls[0].name == CODE_TOOL and "code_interpreter" in self.tools:
            turn.used_tools.add("code_interpreter")
            step = self._open_step(turn, [self.tools["code_interpreter"].entry({"type": "code_interpreter"})])
            code = _code_argument(calls[0].arguments)
            step.delta(0, {"code_interpreter": {"input": code}})
            step.calls[0]["code_interpreter"]["input"] = code
            return self._run_server(turn, step, usage, {"type": "code_interpreter"})
        functions = [c for c in calls if c.name in names][: None if turn.run.parallel_tool_calls else 1]
        step = self._open_step(turn, [{"type": "function", "function": {
            "name": c.name, "arguments": c.arguments, "output": None}} for c in functions])
        for i, call in enumerate(functions):
            turn.used_tools.add("function:" + call.name)
            step.delta(i, {"function": {"arguments": call.arguments}})
        self._require(turn, step, usage)
        return AwaitOutputs()

    def _open_step(self, turn: Turn, calls: list[dict[str, Any]]) -> _StepStream:
        run = turn.run
        step = _StepStream(self, turn, [dict(c, id=new_id("call")) for c in calls])
        self.lifecycle.open_step({
            "id": step.id, "run_id": run.id, "thread_id": run.thread_id, "assistant_id": run.assistant_id,
            "created_at": now(), "type": "tool_calls", "status": "in_progress", "step_details": step.details(),
            "metadata": {},
        })
        for i in range(len(step.calls)):
            step.open(i)
        return step


class _StepStream:
    """A tool_calls step as it is being written: its calls, and the deltas that stream them."""

    def __init__(self, owner: ToolCalling, turn: Turn, calls: list[dict[str, Any]]) -> None:
        self.owner = owner
        self.turn = turn
        self.id = new_id("step")
        self.calls = calls

    def details(self) -> dict[str, Any]:
        return {"type": "tool_calls", "tool_calls": self.calls}

    def add(self, call: dict[str, Any]) -> None:
        """One more call in this step, announced as the first ones were (its id, type and name)."""
        self.calls.append(dict(call, id=new_id("call")))
        self.open(len(self.calls) - 1)

    def open(self, index: int) -> None:
        opening = copy.deepcopy(self.calls[index])  # an event is a snapshot: the call is filled in later
        if opening["type"] == "function":
            opening["function"] = dict(opening["function"], arguments="")
        self.delta(index, opening)

    def emitter(self, index: int) -> Callable[[dict[str, Any]], None]:
        return lambda body: self.delta(index, body)

    def delta(self, index: int, body: dict[str, Any]) -> None:
        self.owner.lifecycle.step_delta(self.turn.thread_id, self.id,
                                        {"index": index, "type": self.calls[index]["type"], **body})

    def finish(self, usage: list[int]) -> None:
        self.owner.lifecycle.close_step(self.turn.run_id, self.id, "completed",
                                        {"step_details": self.details(), "usage": _usage(*usage)})


def _code_argument(arguments: str) -> str:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    return str(value.get("code", "")) if isinstance(value, dict) else str(value)


def _key(tool: dict[str, Any]) -> str:
    kind: str = tool["type"]
    return "function:" + tool["function"]["name"] if kind == "function" else kind


def function_specs(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's tools as OpenAI function specs, for templates that render tools themselves."""
    specs = []
    for tool in tools:
        if tool["type"] == "code_interpreter":
            specs.append({"type": "function", "function": {
                "name": CODE_TOOL, "description": "Run Python code in a Jupyter notebook and see its output.",
                "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}}})
        else:
            specs.append(tool)
    return specs


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


__all__ = ["Answer", "AwaitOutputs", "Outcome", "ToolCalling", "ToolRan", "code_text"]
