"""Tool calling inside a run: decide, write the call, run the tool (or hand the call to the client), loop.

Each round the model first chooses between the tools it may use and answering, by scoring each option
(engine/decision.py); the chosen tool (a plug-in, tools/base.py, which owns every per-tool rule) then says how
its call opens and what the body is held to, and the model writes the call under that constraint, in the call
syntax of its chat template or in ours (llm/toolcalls.py). Calls the server runs (code, file search) run here;
function calls stop the run in `requires_action` until the client submits the outputs, after which the run
resumes from what its steps recorded. Each call and its result join the prompt of the next round
(Turn.exchanges). A round's outcome is one of three small values: Answer, ToolRan, AwaitOutputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

from offline_assistants.engine.call_rows import CallRows, keeps_calls
from offline_assistants.engine.decision import Decider
from offline_assistants.engine.lifecycle import Lifecycle
from offline_assistants.engine.loops import CALL_LOOP_TOKENS, LoopGuard
from offline_assistants.engine.model_calls import ModelCalls
from offline_assistants.engine.native_decision import NativeDecider
from offline_assistants.engine.turn import DEFAULT_SYSTEM, Budget, Exchange, Turn
from offline_assistants.ids import new_id, now
from offline_assistants.llm.backend import Decision, DecisionMaker, ModelBackend, Role, ToolOption
from offline_assistants.llm.toolcalls import WrittenCall, syntax_for
from offline_assistants.store import Store
from offline_assistants.tools.base import Offer, Tool, ToolCall, ToolContext, key

log = logging.getLogger(__name__)

SAID_MESSAGES = 8  # how far back the user's words count for what a call needs (tools/functions.py)
MAX_CALL_TOKENS = 512


@dataclass(frozen=True)
class Answer:
    """Answer in text."""


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
                 decider: DecisionMaker | None = None,
                 cite_container_file: Callable[[str, Path], dict[str, Any]] | None = None) -> None:
        self.backend = backend
        self.cite_container_file = cite_container_file  # engine/containers.py: a file the code wrote, cited
        self.rows = CallRows(store, backend, syntax_for(backend.native_tool_format))
        self.syntax = syntax_for(backend.native_tool_format)  # the model's own call syntax, or ours
        self.store = store
        self.lifecycle = lifecycle
        self.model_calls = model_calls
        self.tools = tools  # by the API's tool type; a type missing here is not offered to the model
        self.save_output = save_output
        self.max_rounds = max_rounds
        self.stores_for = stores_for  # the live vector stores a run's file search reads
        self.files_hold = files_hold  # how many of a request's words those stores hold (engine/decision.py)
        # Answer, code, or which function: a model with a call syntax of its own is asked in it
        # (engine/native_decision.py), any other is scored on what each option says (engine/decision.py); a
        # scripted model brings its own (script.py).
        self.decider: DecisionMaker = decider or (
            NativeDecider(backend, self.syntax) if self.syntax.native else Decider(backend))

    # --- per run ---
    def prepare(self, turn: Turn) -> None:
        """The run's usable tools, the system prompt that describes them, and (on resume) its earlier calls."""
        run = turn.run
        context = self._context(turn)
        turn.tools = [Offer(self.tools[t["type"]], t) for t in run.tools
                      if t["type"] in self.tools and self.tools[t["type"]].available(t, context)]
        turn.tool_choice = run.tool_choice or "auto"
        if not turn.tools or turn.tool_choice == "none":
            turn.tools = []
            self._replay(turn)  # calls made before (or brought by the client) are still read back
            return
        # A model with a call syntax of its own, kept from opening its answer as a call, writes the call in a
        # ```json fence instead (Qwen2.5-Coder, measured): for it the answer is cut at the call and asked again
        # without the tools (engine/executor.py), not steered.
        turn.call_openings = () if self.syntax.native else tuple(
            o.tool.opening(o.spec, self.syntax) for o in turn.tools)
        turn.system = self.system(run.instructions or DEFAULT_SYSTEM, turn.tools)
        self._replay(turn)

    def system(self, instructions: str, offers: list[Offer]) -> list[int]:
        """The system prompt that gives the instructions and describes the tools."""
        if not offers:
            return self.backend.encode_system(instructions)
        if self.syntax.native:  # the template lists them, as the model was trained
            return self.backend.encode_system(instructions, tools=[o.tool.function_spec(o.spec) for o in offers])
        return self.backend.encode_system(instructions + self._describe(offers))

    def system_tokens(self, instructions: str, tools: list[dict[str, Any]]) -> int:
        """How long `system` is for a run with these tools (a count that runs nothing)."""
        return len(self.system(instructions or DEFAULT_SYSTEM,
                               [Offer(self.tools[t["type"]], t) for t in tools if t["type"] in self.tools]))

    def _describe(self, offers: list[Offer]) -> str:
        lines = ["", "", "You can use these tools:"]
        lines += [o.tool.describe(o.spec) for o in offers]
        lines.append("Use a tool when it helps, then answer the user from its result.")
        return "\n".join(lines)

    def _replay(self, turn: Turn) -> None:
        """Rebuild the in-run transcript from the run's tool steps (a run resumed after submit_tool_outputs)."""
        for step in self.store.runs.tool_steps(turn.run_id):
            turn.tool_rounds += 1
            calls = [(self.tools[c["type"]], self.tools[c["type"]].parse_call(c))
                     for c in step.step_details["tool_calls"] if c["type"] in self.tools]
            for tool, call in calls:
                turn.used_tools.add(key(tool.type, call.name))
                turn.builtin_calls += tool.runs_here
            if calls:
                self._exchange(turn, calls, [tool.result_of(call) for tool, call in calls])
            if step.status == "in_progress":
                self.lifecycle.close_step(turn.run_id, step.id, "completed")

    def _exchange(self, turn: Turn, calls: list[tuple[Tool, ToolCall]], results: list[str]) -> None:
        """The calls and their results as the model reads them back: in its own template, or in our syntax."""
        if keeps_calls(turn.thread_id):  # a conversation: rows of its thread (engine/call_rows.py)
            self.rows.answered(turn, calls, results)
            turn.exchanges.append(Exchange([], results[-1]))
            return
        if self.syntax.native:
            tokens = self.backend.encode_exchange([tool.written(call) for tool, call in calls], results)
        else:
            tokens = []
            for (tool, call), result in zip(calls, results):
                tokens += (self.backend.encode_message("assistant", tool.transcript(call))
                           + self.backend.encode_message("tool", tool.reply(result)))
        turn.exchanges.append(Exchange(tokens, results[-1]))

    def encode_item(self, item: dict[str, Any]) -> tuple[Role, str, list[int]]:
        """A function call or its output kept in a conversation (a row of its thread): the role and text it is
        stored with, and its tokens as the model reads them, in its own template or in our syntax."""
        if item["type"] == "function_call":
            call = WrittenCall(item["name"], item["arguments"])
            text = self.syntax.call(call.name, call.arguments)
            tokens = (self.backend.encode_exchange([call], []) if self.syntax.native
                      else self.backend.encode_message("assistant", text))
            return "assistant", text, tokens
        reply = item["output"] if self.syntax.native else self.tools["function"].reply(item["output"])
        return "tool", reply, self.backend.encode_message("tool", reply)

    def _call_text(self, tool: Tool, call: ToolCall) -> str:
        if self.syntax.native:
            written = tool.written(call)
            return self.syntax.call(written.name, written.arguments)
        return tool.transcript(call)

    def _request(self, turn: Turn) -> str:
        if turn.request is None:
            turn.request = self.store.messages.latest_text(turn.thread_id)
        return turn.request

    def _context(self, turn: Turn, request: str = "") -> ToolContext:
        # A response's code runs in its container (engine/responses.py puts its id in the run's tool resources).
        container = ((turn.tool_resources or {}).get("code_interpreter") or {}).get("container_id")
        cite = self.cite_container_file
        return ToolContext(
            turn.thread_id,
            input_files=lambda: self.store.files.code_inputs(turn.run.assistant_id, turn.thread_id,
                                                             turn.tool_resources),
            save_output=self.save_output,
            vector_store_ids=lambda: self.vector_store_ids(turn),
            round=len(turn.exchanges), request=request, files_hold=self.files_hold, said=lambda: self._said(turn),
            code_session=container or "", cite_file=(
                (lambda path: cite(container, path)) if container and cite is not None else None))

    def _said(self, turn: Turn) -> str:
        """The user's words in the thread's newest SAID_MESSAGES messages: a value given a turn earlier counts."""
        texts = islice(self.store.messages.texts(turn.thread_id, newest_first=True), SAID_MESSAGES)
        return "\n".join(t.text for t in texts if t.role == "user")

    def vector_store_ids(self, turn: Turn) -> list[str]:
        if turn.vector_store_ids is None:
            turn.vector_store_ids = self.stores_for(turn.run.assistant_id, turn.thread_id, turn.tool_resources)
        return turn.vector_store_ids

    # --- per round ---
    def round(self, turn: Turn, prompt: list[int], budget: Budget) -> Outcome:
        """Make the round's tool calls if the model (or tool_choice) wants any; otherwise answer."""
        if not turn.tools or turn.tool_rounds >= self.max_rounds:
            return Answer()
        forced = self._forced(turn)
        if forced is not None:
            chosen, infer = [forced], True
        else:
            decision = self._decide(turn, prompt, budget)
            if decision.tool is None:
                return Answer()
            offers = {o.key: o for o in turn.tools}
            chosen = [offers[decision.tool.key]]
            if turn.run.parallel_tool_calls and chosen[0].tool.parallel:
                chosen += [offers[o.key] for o in decision.also]
            infer = not decision.exact
        turn.tool_rounds += 1
        turn.used_tools.add(chosen[0].key)
        turn.last_call_failed = False
        return self._calls(turn, prompt, budget, chosen, infer=infer)

    def _forced(self, turn: Turn) -> Offer | None:
        choice = turn.tool_choice
        if turn.tool_rounds > 0 or not isinstance(choice, dict):
            return None
        named = (choice.get(choice["type"]) or {}).get("name")  # a function (or custom tool) by name
        if named:
            wanted = key(choice["type"], named)
            return next((o for o in turn.tools if o.key == wanted), None)
        return next((o for o in turn.tools if o.tool.type == choice["type"]), None)

    def _decide(self, turn: Turn, prompt: list[int], budget: Budget) -> Decision:
        request = self._request(turn)
        context = self._context(turn, request)
        if turn.tool_rounds > 0 or turn.tool_choice == "required":
            # What the user said decides only the first move, and only where answering is allowed: a later call
            # takes its values from earlier outputs, and "required" must call.
            context = replace(context, said=None)
        options: list[ToolOption | None] = []
        offer_all = self.decider.offers_used_tools  # a script's may call a tool again; real models may not
        for offer in turn.tools:
            # A tool already used in this run is offered again only to retry a failed call, once: small models
            # otherwise repeat the same call until the round limit.
            retry = offer.tool.retries and turn.last_call_failed and turn.tool_rounds < 2
            spent = offer.tool.runs_here and turn.max_builtin_calls is not None and \
                turn.builtin_calls >= turn.max_builtin_calls
            if (offer_all or offer.key not in turn.used_tools or retry) and not spent:
                option = offer.tool.option(offer.spec, context)
                if option is not None:
                    options.append(option)
        if not (turn.tool_choice == "required" and turn.tool_rounds == 0):
            options.append(None)  # answering
        if len(options) <= 1:
            return Decision(options[0] if options else None, 0)
        decision = self.decider.choose(turn.system, prompt, options, request=request, cache_key=turn.cache_key)
        self.model_calls.add_usage(turn, budget, decision.read, 0)
        return decision

    def _calls(self, turn: Turn, prompt: list[int], budget: Budget, offers: list[Offer], *,
               infer: bool = True) -> Outcome:
        """Write the round's calls into one step, each under its tool's constraint; run what the server runs.

        With parallel tool calls, a tool may add a second call of itself when the request joins another value to
        one the first call quoted ("in Paris and in Rome"); the decision may have added a different function.
        """
        request = self._request(turn)
        pending: list[tuple[Offer, dict[str, Any]]] = [(o, {}) for o in offers]
        step = self._open_step(turn, [o.tool.new_call(o.spec, new_id("call")) for o in offers])
        usage = [0, 0]
        written = prompt
        for i, (offer, fixed) in enumerate(pending):  # grows by at most one while it runs (see below)
            tool = offer.tool
            writer = tool.writer(step.emitter(i), self.syntax)
            guard = LoopGuard(min_loop_tokens=CALL_LOOP_TOKENS, symbols=False)
            out = self.model_calls.generate(
                turn, written + self.backend.encode_text(tool.opening(offer.spec, self.syntax)), budget,
                constraint=tool.constraint(offer.spec, request, self.syntax, fixed), max_tokens=MAX_CALL_TOKENS,
                on_piece=writer.feed, on_token=guard.feed, halt=guard.stopped)
            usage[0] += out.read
            usage[1] += out.written
            out.check()
            body = writer.finish()
            if guard.tripped is not None:  # a loop under the grammar: keep what came before it, closed
                log.info("run %s: a %s call %s; closed before it", turn.run_id, tool.type, guard.tripped)
                body = tool.cut_short(body[:guard.kept], self.syntax)
            tool.record(step.calls[i], body, self.syntax)
            written = written + self.backend.encode_text(self._call_text(tool, step.calls[i]) + "\n")
            if infer and len(pending) == 1 and turn.run.parallel_tool_calls and tool.parallel:
                other = tool.again(offer.spec, step.calls[i], request)
                if other is not None:
                    pending.append((offer, other))
                    step.add(tool.new_call(offer.spec, new_id("call")))
        if offers[0].tool.runs_here:  # code and file search run here, alone in their step
            return self._run_server(turn, step, usage, offers[0])
        self._require(turn, step, usage)
        return AwaitOutputs()

    def _run_server(self, turn: Turn, step: _StepStream, usage: list[int], offer: Offer) -> ToolRan:
        tool, call = offer.tool, step.calls[0]
        turn.builtin_calls += 1
        ran = tool.run(self._context(turn, self._request(turn)), offer.spec, call)
        assert ran is not None  # a tool that runs here returns what it ran
        turn.last_call_failed = ran.failed
        turn.links += ran.links
        for delta in ran.deltas:
            step.delta(0, delta)
        step.finish(usage)
        self._exchange(turn, [(tool, call)], [ran.result])
        return ToolRan()

    def _require(self, turn: Turn, step: _StepStream, usage: list[int]) -> None:
        """Stop the run until the client submits the outputs of the step's calls."""
        self.store.runs.update_step(step.id, {"step_details": step.details(), "usage": _usage(*usage)})
        if keeps_calls(turn.thread_id):
            self.rows.waiting(turn, [(self.tools[c.type], c) for c in step.calls])
        required = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
            _without_output(c.to_api()) for c in step.calls]}}
        self.lifecycle.settle(turn.run_id, "requires_action", {"required_action": required})

    def _open_step(self, turn: Turn, calls: list[ToolCall]) -> _StepStream:
        run = turn.run
        step = _StepStream(self, turn, calls)
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

    def __init__(self, owner: ToolCalling, turn: Turn, calls: list[ToolCall]) -> None:
        self.owner = owner
        self.turn = turn
        self.id = new_id("step")
        self.calls = calls

    def details(self) -> dict[str, Any]:
        return {"type": "tool_calls", "tool_calls": [c.to_api() for c in self.calls]}

    def add(self, call: ToolCall) -> None:
        """One more call in this step, announced as the first ones were (its id, type and name)."""
        self.calls.append(call)
        self.open(len(self.calls) - 1)

    def open(self, index: int) -> None:
        api = self.calls[index].to_api()  # a snapshot: the call is filled in later
        self.delta(index, api)

    def emitter(self, index: int) -> Callable[[dict[str, Any]], None]:
        return lambda body: self.delta(index, body)

    def delta(self, index: int, body: dict[str, Any]) -> None:
        self.owner.lifecycle.step_delta(self.turn.thread_id, self.id,
                                        {"index": index, "type": self.calls[index].type, **body})

    def finish(self, usage: list[int]) -> None:
        self.owner.lifecycle.close_step(self.turn.run_id, self.id, "completed",
                                        {"step_details": self.details(), "usage": _usage(*usage)})


def _without_output(call: dict[str, Any]) -> dict[str, Any]:
    """A call as required_action lists it: what to run, not (yet) its output."""
    body = {k: v for k, v in call[call["type"]].items() if k != "output"}
    return {**call, call["type"]: body}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


__all__ = ["Answer", "AwaitOutputs", "Outcome", "ToolCalling", "ToolRan"]
