"""Tool calling inside a run: decide, call, run the tool (or hand the call to the client), loop.

Each round the model first chooses between the tools it may use and answering, by scoring each option
(engine/decision.py); then writes the call under a constraint (llm/backend.py: a code block, or JSON valid
against the function's schema), which the backend enforces. Code interpreter calls run here, in the thread's
Jupyter kernel; function calls stop the run in `requires_action` until the client submits the outputs, after which the
run resumes from what its steps recorded. The call and its result are added to the prompt of the next round.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from offline_assistants.engine import arguments as arguments_for
from offline_assistants.engine.decision import Decider, Decision
from offline_assistants.engine.executor import DEFAULT_SYSTEM, Budget, Executor, Turn
from offline_assistants.ids import new_id, now
from offline_assistants.llm.backend import CodeBlock, Constraint, Finish, JsonSchema
from offline_assistants.llm.toolcalls import CODE_CLOSE, CODE_OPEN, NATIVE_MARKERS, parse_native
from offline_assistants.store.db import loads

if TYPE_CHECKING:
    from offline_assistants.engine.engine import Engine

log = logging.getLogger(__name__)

MAX_CALL_TOKENS = 512
PROMPT_OUTPUT_CHARS = 2000  # how much of a tool's output the model reads back; the step keeps it all


CODE_TOOL = "python"  # the name code_interpreter goes by when a template lists tools as functions


def _code_argument(arguments: str) -> str:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    return str(value.get("code", "")) if isinstance(value, dict) else str(value)


class ToolCalling:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.decider = Decider(engine.backend)  # engine/decision.py: answer, code, or which function

    # --- per run ---
    def prepare(self, turn: Turn) -> None:
        run = turn.run
        tools = [t for t in loads(run["tools"]) or [] if self._usable(t)]
        turn.tools = tools
        turn.tool_choice = loads(run["tool_choice"]) if run["tool_choice"] else "auto"
        if not tools or turn.tool_choice == "none":
            turn.tools = []
            return
        backend = self.engine.backend
        instructions = run["instructions"] or DEFAULT_SYSTEM
        if backend.native_tool_format:
            turn.system = backend.encode_system(instructions, tools=function_specs(tools))
        else:
            turn.system = backend.encode_system(instructions + describe(tools))
        self._replay(turn)

    def _usable(self, tool: dict[str, Any]) -> bool:
        if tool["type"] == "code_interpreter":
            return self.engine.code_runner is not None
        return tool["type"] == "function"

    def _replay(self, turn: Turn) -> None:
        """Rebuild the in-run transcript from the run's tool steps (a run resumed after submit_tool_outputs)."""
        store, runs = self.engine.store, self.engine.runs
        rows = store.database.query(
            "SELECT id FROM run_steps WHERE run_id = ? AND type = 'tool_calls' ORDER BY pk", (turn.run["id"],)
        )
        for row in rows:
            step = store.runs.get_step(turn.run["id"], row["id"])
            turn.tool_rounds += 1
            for call in step.step_details["tool_calls"]:
                turn.used_tools.add(_key(call))
                if call["type"] == "function":
                    self._extend(turn, call_text(call["function"]["name"], call["function"]["arguments"]),
                                 response_text(call["function"].get("output") or ""))
                elif call["type"] == "code_interpreter":
                    logs = "".join(o.get("logs", "") for o in call["code_interpreter"]["outputs"])
                    self._extend(turn, code_text(call["code_interpreter"]["input"]), output_text(_clip(logs)))
            if step.status == "in_progress":
                runs.lifecycle.close_step(turn.run["id"], step.id, "completed")

    def _extend(self, turn: Turn, call: str, result: str) -> None:
        backend = self.engine.backend
        turn.extras += backend.encode_message("assistant", call) + backend.encode_message("tool", result)

    # --- per round ---
    def handle(self, ex: Executor, turn: Turn, prompt: list[int], budget: Budget
               ) -> Literal["next", "wait"] | tuple[str, list[int]] | None:
        """Make one tool call if the model (or tool_choice) wants one.

        "next": a tool ran, go round again; "wait": the run awaits the client's tool outputs; None: answer in text;
        (text, tokens): answer in text, which the model has begun (see _native).
        """
        if not turn.tools or turn.tool_rounds >= ex.max_rounds:
            return None
        if self.engine.backend.native_tool_format and turn.tool_choice == "auto":
            return self._native(ex, turn, prompt, budget)
        forced = self._forced(turn)
        decision = Decision(forced, 0) if forced is not None else self._decide(ex, turn, prompt, budget)
        target = decision.tool
        if target is None:
            return None
        turn.tool_rounds += 1
        turn.used_tools.add(_key(target))
        turn.last_call_failed = False
        if target["type"] == "code_interpreter":
            self._code(ex, turn, prompt, budget)
            return "next"
        also = decision.also if turn.run["parallel_tool_calls"] else []
        self._functions(ex, turn, prompt, budget, [target["function"]] + [t["function"] for t in also])
        return "wait"

    def _forced(self, turn: Turn) -> dict[str, Any] | None:
        choice = turn.tool_choice
        if turn.tool_rounds > 0 or not isinstance(choice, dict):
            return None
        if choice["type"] == "function":
            return next((t for t in turn.tools if t["type"] == "function"
                         and t["function"]["name"] == choice["function"]["name"]), None)
        return next((t for t in turn.tools if t["type"] == choice["type"]), None)

    def _decide(self, ex: Executor, turn: Turn, prompt: list[int], budget: Budget) -> Decision:
        options: list[dict[str, Any] | None] = []
        for tool in turn.tools:
            # A tool already used in this run is offered again only to retry failed code, once: small models
            # otherwise repeat the same call until the round limit.
            retry = tool["type"] == "code_interpreter" and turn.last_call_failed and turn.tool_rounds < 2
            if _key(tool) not in turn.used_tools or retry:
                options.append(tool)
        if not (turn.tool_choice == "required" and turn.tool_rounds == 0):
            options.append(None)  # answering
        if len(options) <= 1:
            return Decision(options[0] if options else None, 0)
        decision = self.decider.choose(turn.system, prompt, options, request=self._request(turn),
                                       cache_key=turn.run["thread_id"])
        self._count(ex, turn, budget, decision.read, 0)
        return decision

    def _request(self, turn: Turn) -> str:
        if turn.request is None:
            turn.request = self.engine.store.messages.latest_text(turn.run["thread_id"])
        return turn.request

    def _count(self, ex: Executor, turn: Turn, budget: Budget, prompt: int, completion: int) -> None:
        budget.used_prompt += prompt
        budget.used_completion += completion
        self.engine.store.runs.add_usage(turn.run["id"], prompt, completion)

    def _tokens(self, text: str) -> list[int]:
        return self.engine.backend.encode_text(text)

    def _generate(
        self, ex: Executor, turn: Turn, prompt: list[int], budget: Budget, constraint: Constraint, *, max_tokens: int,
        on_piece: Callable[[str], None] | None = None, usage: list[int] | None = None, greedy: bool = False,
    ) -> str:
        limit, by_budget = ex.max_new(prompt, budget)
        text = ""
        finish: Finish | None = None
        run_id = turn.run["id"]
        sampling = ex.sampling(turn, min(limit, max_tokens), constraint)
        if greedy:
            sampling = dataclasses.replace(sampling, temperature=0.0)
        for item in self.engine.backend.generate(prompt, sampling,
                                                 cache_key=turn.run["thread_id"],
                                                 cancelled=lambda: ex.cancelled(run_id)):
            if isinstance(item, Finish):
                finish = item
                break
            text += item.text
            if on_piece is not None and item.text:
                on_piece(item.text)
        assert finish is not None
        budget.used_prompt += len(prompt)
        budget.used_completion += finish.completion_tokens
        self.engine.store.runs.add_usage(run_id, len(prompt), finish.completion_tokens)
        if usage is not None:
            usage[0] += len(prompt)
            usage[1] += finish.completion_tokens
        if finish.reason == "cancelled":
            from offline_assistants.engine.executor import Cancelled

            raise Cancelled()
        if finish.reason == "length" and by_budget and limit <= max_tokens:
            from offline_assistants.engine.executor import Incomplete

            raise Incomplete("max_completion_tokens")
        return text

    # --- code interpreter ---
    def _code(self, ex: Executor, turn: Turn, prompt: list[int], budget: Budget) -> None:
        step = self._open_step(turn, [{"type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}])
        fence = _Fence(lambda piece: step.delta(0, {"code_interpreter": {"input": piece}}))
        usage = [0, 0]
        code = self._generate(ex, turn, prompt + self._tokens(CODE_OPEN), budget, CodeBlock(),
                              max_tokens=MAX_CALL_TOKENS, on_piece=fence.feed, usage=usage)
        fence.flush()
        code = code[: -len(CODE_CLOSE)] if code.endswith(CODE_CLOSE) else code
        self._execute(turn, step, code, usage)

    def _execute(self, turn: Turn, step: _StepStream, code: str, usage: list[int]) -> None:
        """Run the code in the thread's kernel and record what came out: logs, images, files."""
        result = self.engine.code_runner.execute(  # type: ignore[union-attr]
            turn.run["thread_id"], code, input_files=self._input_files(turn))
        turn.last_call_failed = result.error is not None
        outputs: list[dict[str, Any]] = []
        if result.logs:
            outputs.append({"type": "logs", "logs": result.logs})
        for i, png in enumerate(result.images):
            image = self.engine.files.create_output(png, f"image_{i}.png" if i else "image.png")
            outputs.append({"type": "image", "image": {"file_id": image.id}})
        for path in result.files:
            made = self.engine.files.create_output(Path(path).read_bytes(), Path(path).name)
            turn.output_files.append((Path(path).name, made.id))
        if outputs:
            step.delta(0, {"code_interpreter": {"outputs": [dict(o, index=i) for i, o in enumerate(outputs)]}})
        step.calls[0]["code_interpreter"] = {"input": code, "outputs": outputs}
        step.finish(usage)
        self._extend(turn, code_text(code), output_text(_for_model(result)))

    def _input_files(self, turn: Turn) -> dict[str, Path]:
        store = self.engine.store
        ids: list[str] = []
        assistant = store.database.query_one("SELECT tool_resources FROM assistants WHERE id = ?",
                                             (turn.run["assistant_id"],))
        thread = store.threads.row(turn.run["thread_id"])
        for resources in (assistant["tool_resources"] if assistant else None, thread["tool_resources"],
                          turn.run["tool_resources"]):
            ids += ((loads(resources) or {}).get("code_interpreter") or {}).get("file_ids", [])
        for row in store.database.query(
            "SELECT attachments FROM messages WHERE thread_id = ? AND attachments != '[]'", (turn.run["thread_id"],)
        ):
            for attachment in loads(row["attachments"]):
                if any(t.get("type") == "code_interpreter" for t in attachment.get("tools", [])):
                    ids.append(attachment["file_id"])
        files: dict[str, Path] = {}
        for file_id in dict.fromkeys(ids):
            found = store.database.query_one("SELECT filename, path FROM files WHERE id = ?", (file_id,))
            if found is not None:
                files[found["filename"]] = Path(found["path"])
        return files

    # --- functions ---
    def _functions(self, ex: Executor, turn: Turn, prompt: list[int], budget: Budget,
                   functions: list[dict[str, Any]]) -> None:
        """Write the calls of one step, each under its narrowed schema's grammar, and await their outputs.

        A call's arguments may say only what the user's request says (engine/arguments.py). With parallel tool
        calls, a second call of the same function is added when the request joins another value to one the
        first call quoted ("in Paris and in Rome"); the decision may also have added a different function.
        """
        request = self._request(turn)
        pending: list[tuple[dict[str, Any], dict[str, Any]]] = [(fn, {}) for fn in functions]
        step = self._open_step(turn, [_function_call(fn["name"]) for fn in functions])
        usage = [0, 0]
        written = prompt
        for i, (fn, fixed) in enumerate(pending):  # grows by at most one while it runs (see below)
            schema = arguments_for.fix(arguments_for.narrow(fn.get("parameters"), request), fixed)
            lead = self._tokens(call_text(fn["name"], "")[: -len("}\n</tool_call>")])
            arguments = self._generate(
                ex, turn, written + lead, budget, JsonSchema(schema), max_tokens=MAX_CALL_TOKENS,
                on_piece=step.arguments_delta(i), usage=usage)
            step.calls[i]["function"]["arguments"] = arguments
            written = written + self._tokens(call_text(fn["name"], arguments) + "\n")
            if len(pending) == 1 and turn.run["parallel_tool_calls"]:
                other = arguments_for.repeat(fn.get("parameters"), arguments, request)
                if other is not None:
                    pending.append((fn, other))
                    step.add(_function_call(fn["name"]))
        self._require(turn, step, usage)

    def _require(self, turn: Turn, step: _StepStream, usage: list[int]) -> None:
        """Stop the run until the client submits the outputs of the step's function calls."""
        store, runs = self.engine.store, self.engine.runs
        store.runs.update_step(step.id, {"step_details": step.details(), "usage": _usage(*usage)})
        required = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
            for c in step.calls]}}
        runs.lifecycle.settle(turn.run["id"], "requires_action", {"required_action": required})

    # --- native tool-call syntax ---
    def _native(self, ex: Executor, turn: Turn, prompt: list[int], budget: Budget
                ) -> Literal["next", "wait"] | tuple[str, list[int]] | None:
        """Let a model whose template defines tool calls write freely; peek at its first tokens to see whether it
        is starting a call. An answer goes back to the executor as the opening of its message."""
        fmt = self.engine.backend.native_tool_format
        marker = NATIVE_MARKERS[fmt]  # type: ignore[index]
        limit, _ = ex.max_new(prompt, budget)
        text, tokens, calling = "", [], False
        run_id = turn.run["id"]
        stream = self.engine.backend.generate(prompt, ex.sampling(turn, min(limit, MAX_CALL_TOKENS)),
                                              cache_key=turn.run["thread_id"], cancelled=lambda: ex.cancelled(run_id))
        try:
            for item in stream:
                if isinstance(item, Finish):
                    break
                text += item.text
                tokens.append(item.token)
                head = text.lstrip()
                if not calling and head.startswith(marker):
                    calling = True
                elif not calling and head and not marker.startswith(head):
                    return (text, tokens)  # an answer: the executor continues it as the message
        finally:
            stream.close()  # type: ignore[attr-defined]
        if not calling:
            return (text, tokens)
        budget.used_prompt += len(prompt)
        budget.used_completion += len(tokens)
        self.engine.store.runs.add_usage(run_id, len(prompt), len(tokens))
        usage = [len(prompt), len(tokens)]
        names = {t["function"]["name"]: t for t in turn.tools if t["type"] == "function"}
        calls = [c for c in parse_native(text, fmt) if c.name in names or c.name == CODE_TOOL]  # type: ignore[arg-type]
        if not calls:
            return (text, tokens)  # not a call we can honour: keep what it wrote as the answer
        turn.tool_rounds += 1
        if calls[0].name == CODE_TOOL and self.engine.code_runner is not None:
            code = _code_argument(calls[0].arguments)
            turn.used_tools.add("code_interpreter")
            step = self._open_step(turn, [{"type": "code_interpreter",
                                           "code_interpreter": {"input": "", "outputs": []}}])
            step.delta(0, {"code_interpreter": {"input": code}})
            self._execute(turn, step, code, usage)
            return "next"
        functions = [c for c in calls if c.name in names][: None if turn.run["parallel_tool_calls"] else 1]
        step = self._open_step(turn, [{"type": "function", "function": {
            "name": c.name, "arguments": c.arguments, "output": None}} for c in functions])
        for i, call in enumerate(functions):
            turn.used_tools.add("function:" + call.name)
            step.delta(i, {"function": {"arguments": call.arguments}})
        self._require(turn, step, usage)
        return "wait"

    def _open_step(self, turn: Turn, calls: list[dict[str, Any]]) -> _StepStream:
        run, runs = turn.run, self.engine.runs
        step = _StepStream(self.engine, turn, [dict(c, id=new_id("call")) for c in calls])
        self.engine.store.runs.insert_step({
            "id": step.id, "run_id": run["id"], "thread_id": run["thread_id"], "assistant_id": run["assistant_id"],
            "created_at": now(), "type": "tool_calls", "status": "in_progress", "step_details": step.details(),
            "metadata": {},
        })
        # As the real API streams it: the step opens with no calls; a first delta per call brings its id, type
        # and name (the SDK's on_tool_call_created), later deltas only what is new.
        shown = self.engine.store.runs.get_step(run["id"], step.id).model_dump(mode="json")
        shown["step_details"] = {"type": "tool_calls", "tool_calls": []}
        runs.bus.publish(run["thread_id"], "thread.run.step.created", shown)
        runs.bus.publish(run["thread_id"], "thread.run.step.in_progress", shown)
        for i in range(len(step.calls)):
            step.open(i)
        return step


class _StepStream:
    """A tool_calls step as it is being written: its calls, and the deltas that stream them."""

    def __init__(self, engine: Engine, turn: Turn, calls: list[dict[str, Any]]) -> None:
        self.engine = engine
        self.turn = turn
        self.id = new_id("step")
        self.calls = calls

    def details(self) -> dict[str, Any]:
        return {"type": "tool_calls", "tool_calls": self.calls}

    def add(self, call: dict[str, Any]) -> None:
        """One more call in this step, announced as the first ones were (its id, type and name)."""
        self.calls.append(dict(call, id=new_id("call")))
        self.open(len(self.calls) - 1)

    def arguments_delta(self, index: int) -> Callable[[str], None]:
        return lambda piece: self.delta(index, {"function": {"arguments": piece}})

    def open(self, index: int) -> None:
        opening = dict(self.calls[index])
        if opening["type"] == "function":
            opening["function"] = dict(opening["function"], arguments="")
        self.delta(index, opening)

    def delta(self, index: int, body: dict[str, Any]) -> None:
        call = {"index": index, "type": self.calls[index]["type"], **body}
        self.engine.runs.bus.publish(self.turn.run["thread_id"], "thread.run.step.delta", {
            "id": self.id, "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}},
        })

    def finish(self, usage: list[int]) -> None:
        self.engine.runs.lifecycle.close_step(self.turn.run["id"], self.id, "completed",
                                              {"step_details": self.details(), "usage": _usage(*usage)})


class _Fence:
    """Streams code pieces, holding back what might be the start of the closing fence."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.pending = ""

    def feed(self, piece: str) -> None:
        self.pending += piece
        keep = len(CODE_CLOSE)
        if len(self.pending) > keep:
            out, self.pending = self.pending[:-keep], self.pending[-keep:]
            self.emit(out)

    def flush(self) -> None:
        rest = self.pending[: -len(CODE_CLOSE)] if self.pending.endswith(CODE_CLOSE) else self.pending
        if rest:
            self.emit(rest)
        self.pending = ""


def _function_call(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": "", "output": None}}


def _key(tool: dict[str, Any]) -> str:
    return "function:" + tool["function"]["name"] if tool["type"] == "function" else tool["type"]


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


def describe(tools: list[dict[str, Any]]) -> str:
    lines = ["", "", "You can use these tools:"]
    for tool in tools:
        if tool["type"] == "code_interpreter":
            lines.append("- python: runs Python code in a Jupyter notebook and shows its output. Files you were "
                         "given are in the current directory.")
        else:
            fn = tool["function"]
            params = json.dumps(fn.get("parameters") or {"type": "object", "properties": {}})
            lines.append(f"- {fn['name']}: {fn.get('description') or ''} Arguments (JSON Schema): {params}")
    lines.append("Use a tool when it helps, then answer the user from its result.")
    return "\n".join(lines)


def code_text(code: str) -> str:
    return f"{CODE_OPEN}{code}{CODE_CLOSE}"


def output_text(logs: str) -> str:
    return f"Output:\n{logs}" if logs else "Output: (nothing)"


def call_text(name: str, arguments: str) -> str:
    return f'<tool_call>\n{{"name": {json.dumps(name)}, "arguments": {arguments}}}\n</tool_call>'


def response_text(output: str) -> str:
    return f"<tool_response>\n{output}\n</tool_response>"


def _clip(text: str) -> str:
    if len(text) > PROMPT_OUTPUT_CHARS:
        return text[: PROMPT_OUTPUT_CHARS // 2] + "\n[...]\n" + text[-PROMPT_OUTPUT_CHARS // 2:]
    return text


def _for_model(result: Any) -> str:
    text = _clip(result.logs)
    if result.images:
        text += f"\n[{len(result.images)} image(s) shown to the user]"
    if result.state_lost:
        text += "\n[The Python session was restarted: variables from earlier code are gone.]"
    if result.error == "timeout":
        text += "\n[The code was stopped: it ran past the time limit.]"
    return text.strip()


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

