"""Responses and their chains, on the runs that do their work.

A response is a run seen through another face: its input becomes the thread's messages (or, for a function
call's output, the submission that resumes the run waiting for it), the same executor and tool loop do the work,
and its output items are the run's steps and messages read back (engine/response_items.py). What a run does not
keep (the request's echo, the input items, where in a run a response begins) is a `responses` row.

Where a response's context lives:
- `conversation`: the conversation is a thread (the same rows), and each response appends to it;
- `previous_response_id`: the chain's thread. A response that continues the newest response on it appends
  there, so a chain of N costs one window choice, O(log N), and the model's KV prefix stays valid; one that
  continues an older response (a fork) copies the chain up to that response into a thread of its own, once;
- neither: a new thread.
A run waiting for function outputs (the response ended with `function_call` items, `completed` to this face) is
resumed by the response that brings them, which owns the run's steps from there on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from offline_assistants.engine.containers import Containers
from offline_assistants.engine.conversations import Conversations
from offline_assistants.engine.events import Listener, Subscription
from offline_assistants.engine.files import Files
from offline_assistants.engine.response_items import (
    Input,
    call_items,
    message_item,
    read_input,
    row_item,
    run_tools,
)
from offline_assistants.engine.runs import Runs
from offline_assistants.engine.threads import Threads
from offline_assistants.errors import InvalidRequest, NotFound
from offline_assistants.ids import new_id, now
from offline_assistants.llm.defaults import SamplingDefaults
from offline_assistants.retrieval.extract import ExtractionError, extract
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.containers import ContainerFileCreate
from offline_assistants.schemas.responses import (
    InputTokens,
    InputTokensCount,
    InputTokensDetails,
    OutputTokensDetails,
    Response,
    ResponseCreate,
    ResponseDeleted,
    ResponseStatus,
    ResponseUsage,
)
from offline_assistants.schemas.runs import SubmitToolOutputs, ToolOutput
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store import Store
from offline_assistants.store.responses import ResponseRecord

STATUS: dict[str, ResponseStatus] = {
    "queued": "queued", "in_progress": "in_progress", "cancelling": "in_progress", "requires_action": "completed",
    "completed": "completed", "incomplete": "incomplete", "failed": "failed", "cancelled": "cancelled",
    "expired": "failed",
}
# The request's fields a response echoes as they were sent.
ECHOED = ("model", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "max_tool_calls",
          "parallel_tool_calls", "truncation", "metadata", "reasoning", "service_tier", "user", "safety_identifier",
          "prompt_cache_key", "top_logprobs", "background", "store")
LOGPROBS = "message.output_text.logprobs"
# What a response resuming a run sets of it anew (the rest, like its container, stays the run's).
RESUMED = ("instructions", "tools", "tool_choice", "temperature", "top_p", "max_completion_tokens",
           "parallel_tool_calls", "response_format", "model", "metadata")
RESERVE = 4
UNKEPT_S = 600  # a window overflow check keeps room for the reply's first tokens: 1/RESERVE of the context


class Responses:
    def __init__(self, store: Store, threads: Threads, runs: Runs, conversations: Conversations,
                 containers: Containers, files: Files, *, n_ctx: int, gives_logprobs: bool = False,
                 count_system: Callable[[str, list[dict[str, Any]]], int] = lambda instructions, tools: 0,
                 encode_system: Callable[[str], list[int]], defaults: SamplingDefaults) -> None:
        self.store = store
        self.threads = threads
        self.runs = runs
        self.conversations = conversations
        self.containers = containers
        self.files = files
        self.gives_logprobs = gives_logprobs
        self.count_system = count_system  # engine/tooling.py ToolCalling.system_tokens
        self.n_ctx = n_ctx
        self.encode_system = encode_system
        self.defaults = defaults

    # --- create ---
    def create(self, req: ResponseCreate, listener: Listener | None = None, *,
               sampling: dict[str, Any] | None = None) -> tuple[str, Subscription | None]:
        """Start a response; returns its id and the subscription `listener` got on its thread (events from now).
        `sampling`: what a chat completion asks for beyond a response's fields (engine/chat.py)."""
        if not req.model and req.prompt is None:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                                 code="missing_required_parameter")
        if req.previous_response_id and req.conversation is not None:
            raise InvalidRequest("Mutually exclusive parameters: Ensure you are only providing one of: "
                                 "'previous_response_id' or 'conversation'.", param=None,
                                 code="mutually_exclusive_parameters")
        if LOGPROBS in (req.include or []):
            if not self.gives_logprobs:
                raise InvalidRequest("This server's model backend gives no log-probabilities (a remote server): "
                                     f"'{LOGPROBS}' cannot be included.", param="include", code="unsupported_value")
            sampling = {**(sampling or {}), "logprobs": req.top_logprobs or 0}
        tools = run_tools(req.tools)
        choice = req.tool_choice
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            tools.tools = _allowed(tools.tools, choice.get("tools") or [])
        given = read_input(req.input, new_id, self._read_file, self._refer)
        thread_id, pending_run, conversation, fork = self._context(req)
        response_id = new_id("response")
        request = {k: v for k, v in req.model_dump(mode="json", exclude_unset=True).items() if k in ECHOED}
        if pending_run is not None and thread_id is not None:
            return response_id, self._resume(req, response_id, thread_id, pending_run, given, request, conversation,
                                             listener)
        unknown = set(given.outputs) - {c["call_id"] for c in given.calls}
        if unknown:
            raise InvalidRequest(f"No tool call found for function call output with call_id {sorted(unknown)[0]}.",
                                 param="input", code=None)
        if not given.messages and not given.calls:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input",
                                 code="missing_required_parameter")
        made = thread_id is None  # a new thread (or a fork's) is made once every check has passed
        thread_id = thread_id or new_id("thread")
        run_id = new_id("run")
        steps: tuple[dict[str, Any], ...] = ()
        if conversation is not None:  # the conversation keeps every item given, calls and outputs too
            prepared = self.conversations.rows(thread_id, given)
            items = [row_item(values) for values, _ in prepared]
        else:  # a chain keeps the history in order; the calls that end the input are a finished step the run
            # starts from, as if it had made them
            history, current = given.split()
            # Rows under ids of their own: a client's item ids may be rows already (of its conversation, or of the
            # same history sent on an earlier turn); the items keep theirs.
            prepared = [({**values, "id": new_id("item")} if values.get("item") else values, tokens)
                        for values, tokens in self.conversations.rows(thread_id, history, check_ids=False)]
            steps = (self._brought_calls(run_id, thread_id, current),) if current.calls else ()
            said = [i for i in history.items if i["type"] == "message"]  # system, developer: instructions, no rows
            items = [*(row_item(values) for values, _ in prepared), *said, *current.items]
        instructions = "\n\n".join([req.instructions or "", *given.instructions]).strip()
        if req.truncation != "auto":
            held = self.store.messages.tokens_through(*fork) if fork else (
                0 if made else self.store.messages.total_tokens(thread_id))
            self._check_fits(held, instructions, [t for _, t in prepared])
        values = self._run_values(req, run_id, thread_id, instructions, tools.tools, tools.vector_store_ids)
        values["sampling"] = sampling or None
        if made:
            self.threads.create(ThreadCreate(), thread_id=thread_id)
            if fork is not None:
                self.store.messages.copy(fork[0], thread_id, through_seq=fork[1], new_id=lambda: new_id("message"))
        try:
            if tools.container is not None:
                resources = values["tool_resources"] or {}
                resources["code_interpreter"] = {"container_id": self._container(tools.container, req,
                                                                                 conversation)}
                values["tool_resources"] = resources
            input_seq = self.store.messages.last_seq(thread_id) + len(prepared)
            _, sub = self.runs.start(values, prepared, listener, steps=steps)
        except BaseException:
            if made:  # refused (a conflict, a full queue, a container): what was made for it goes again
                self.store.threads.delete(thread_id)
            raise
        # The run may be writing already: its output begins after the steps the client brought, not where it is.
        since = self.store.responses.step_pk(steps[0]["id"]) if steps else 0
        self.store.responses.insert({
            "id": response_id, "created_at": values["created_at"], "run_id": run_id, "thread_id": thread_id,
            "conversation_id": conversation, "previous_response_id": req.previous_response_id,
            "since_step": since, "input_seq": input_seq, "request": request, "input": items,
            "store": 0 if req.store is False else 1, "background": 1 if req.background else 0})
        return response_id, sub

    def _refer(self, item_id: str, param: str) -> dict[str, Any]:
        """The stored item an `item_reference` names: a message or another item kept in a thread."""
        try:
            return row_item(self.store.messages.decoded_row_by_id(item_id))
        except NotFound:
            raise NotFound("item", item_id, param=param) from None

    def _read_file(self, part: dict[str, Any], param: str) -> str:
        """An `input_file` part as the text the model reads: the file's text, extracted as file search extracts
        it, under its name."""
        try:
            if isinstance(part.get("file_id"), str):
                meta = self.files.get(part["file_id"])
                name, data = meta.filename, self.files.path(meta.id).read_bytes()
            elif isinstance(part.get("file_data"), str):
                name = str(part.get("filename") or "file")
                data = base64.b64decode(part["file_data"].split(",", 1)[-1], validate=True)
            else:
                raise InvalidRequest(f"Missing required parameter: '{param}.file_id'.", param=f"{param}.file_id",
                                     code="missing_required_parameter")
            return f"[{name}]\n{extract(data, name)}"
        except NotFound:
            raise NotFound("file", part["file_id"], param=f"{param}.file_id") from None
        except (binascii.Error, ValueError, ExtractionError) as exc:
            raise InvalidRequest(f"The file at '{param}' could not be read: {exc}", param=param,
                                 code="invalid_value") from None

    def _context(self, req: ResponseCreate) -> tuple[str | None, str | None, str | None, tuple[str, int] | None]:
        """(thread, a run waiting for function outputs on it, conversation id, what a fork copies: thread and
        seq) for the request's context. Nothing is written here: a refused request must leave nothing behind."""
        if req.conversation is not None:
            conv = req.conversation if isinstance(req.conversation, str) else req.conversation.id
            if not conv.startswith("conv_") or not _exists(self.store, conv):
                raise NotFound("conversation", conv, param="conversation")
            active = self.store.runs.active(conv)
            waiting = active["id"] if active is not None and active["status"] == "requires_action" else None
            return conv, waiting, conv, None
        if not req.previous_response_id:
            return None, None, None, None
        try:
            prev = self.store.responses.get(req.previous_response_id)
        except NotFound:
            raise InvalidRequest(f"Previous response with id '{req.previous_response_id}' not found.",
                                 param="previous_response_id", code="previous_response_not_found") from None
        run = self.store.runs.get(None, prev.run_id)
        latest_on_run = prev.until_step is None
        if run.status == "requires_action" and latest_on_run:
            return prev.thread_id, run.id, prev.conversation_id, None
        through = self._through(prev)
        newest = self.store.responses.latest_on_thread(prev.thread_id) == prev.id
        if newest and self.store.runs.active(prev.thread_id) is None and \
                self.store.messages.last_seq(prev.thread_id) == through:
            return prev.thread_id, None, prev.conversation_id, None
        # An older response continued (or its thread went on past it): its chain, up to it, on a thread of its own.
        return None, None, None, (prev.thread_id, through)

    def _through(self, rec: ResponseRecord) -> int:
        """The seq of the last message a response's chain holds: its input, or the answer it wrote."""
        written = [s["step_details"]["message_creation"]["message_id"]
                   for s in self.store.responses.steps(rec.run_id, rec.since_step, rec.until_step)
                   if s["type"] == "message_creation"]
        return max(rec.input_seq, self.store.messages.max_seq(rec.thread_id, written))

    def _resume(self, req: ResponseCreate, response_id: str, thread_id: str, run_id: str, given: Input,
                request: dict[str, Any], conversation: str | None, listener: Listener | None) -> Subscription | None:
        run = self.store.runs.get(None, run_id)
        pending = [c["id"] for c in (run.required_action or {})["submit_tool_outputs"]["tool_calls"]]
        missing = [c for c in pending if c not in given.outputs]
        if missing:
            raise InvalidRequest(f"No tool output found for function call {missing[0]}.", param="input")
        extra = sorted(set(given.outputs) - set(pending))
        if extra:
            raise InvalidRequest(f"No tool call found for function call output with call_id {extra[0]}.",
                                 param="input")
        since = self.store.responses.last_step(run_id)
        outputs = SubmitToolOutputs(tool_outputs=[ToolOutput(tool_call_id=c, output=given.outputs[c])
                                                  for c in pending])
        self.store.responses.insert({
            "id": response_id, "created_at": now(), "run_id": run_id, "thread_id": thread_id,
            "conversation_id": conversation, "previous_response_id": req.previous_response_id,
            "since_step": since, "input_seq": self.store.messages.last_seq(thread_id), "request": request,
            "input": given.items,
            "store": 0 if req.store is False else 1, "background": 1 if req.background else 0})
        # The response that brings the outputs goes on with its own instructions, tools and sampling, and what
        # it says beside them is read on the run's next model call.
        tools = run_tools(req.tools)
        instructions = "\n\n".join([req.instructions or "", *given.instructions]).strip()
        values = self._run_values(req, run_id, thread_id, instructions, tools.tools, tools.vector_store_ids)
        settings = {k: values[k] for k in RESUMED}
        if values["tool_resources"] and run.tools:
            settings["tool_resources"] = {**(self.store.runs.record(run_id).tool_resources or {}),
                                          **values["tool_resources"]}
        said = [self.threads.prepare(thread_id, m) for m in given.messages]
        try:
            _, sub = self.runs.submit_tool_outputs(thread_id, run_id, outputs, listener, settings=settings,
                                                   messages=said)
        except BaseException:
            self.store.responses.delete(response_id)
            raise
        return sub

    def _run_values(self, req: ResponseCreate, run_id: str, thread_id: str, instructions: str,
                    tools: list[dict[str, Any]], vector_store_ids: list[str]) -> dict[str, Any]:
        created = now()
        fmt = (req.text or {}).get("format") or {"type": "text"}
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
            raise InvalidRequest("Invalid value for 'text.format': expected an object of type 'text', 'json_object' "
                                 "or 'json_schema'.", param="text.format", code="invalid_value")
        response_format: Any = "auto"
        if fmt.get("type") == "json_object":
            response_format = {"type": "json_object"}
        elif fmt.get("type") == "json_schema":
            response_format = {"type": "json_schema", "json_schema": {
                k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
        choice: Any = req.tool_choice or "auto"
        if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
            choice = {"type": choice["type"], choice["type"]: {"name": choice.get("name")}}
        elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            choice = choice.get("mode") or "auto"
        return {
            "id": run_id, "thread_id": thread_id, "assistant_id": "", "created_at": created, "status": "queued",
            "model": req.model or "", "instructions": instructions, "tools": tools,
            "tool_resources": {"file_search": {"vector_store_ids": vector_store_ids}} if vector_store_ids else None,
            "metadata": req.metadata or {},
            "temperature": self.defaults.temperature if req.temperature is None else req.temperature,
            "top_p": self.defaults.top_p if req.top_p is None else req.top_p,
            "max_prompt_tokens": None, "max_completion_tokens": req.max_output_tokens,
            "truncation_strategy": {"type": "auto", "last_messages": None}, "tool_choice": choice,
            "parallel_tool_calls": req.parallel_tool_calls is not False, "response_format": response_format,
            "expires_at": None,  # a response waits for its function outputs as long as the client takes
            "max_tool_calls": req.max_tool_calls,
        }

    def _container(self, given: str | dict[str, Any], req: ResponseCreate, conversation: str | None) -> str:
        """The container the response's code runs in: the one named, or for `auto` the one its chain or
        conversation already uses while it runs (with the files asked for added), else a new one."""
        if isinstance(given, str):
            return self.containers.session(given)
        file_ids = [f for f in given.get("file_ids") or [] if isinstance(f, str)]
        earlier = self._earlier_run(req, conversation)
        used = self.container_of(earlier) if earlier else None
        if used is not None and self._running(used):
            for file_id in file_ids:
                self.containers.add_file(used, ContainerFileCreate(file_id=file_id))
            return self.containers.session(used)
        return self.containers.session(self.containers.auto(file_ids, memory_limit=given.get("memory_limit")).id)

    def _running(self, container_id: str) -> bool:
        try:
            return self.containers.get(container_id).status == "running"
        except NotFound:  # deleted since: `auto` makes a new one
            return False

    def _earlier_run(self, req: ResponseCreate, conversation: str | None) -> str | None:
        if req.previous_response_id:
            return self.store.responses.get(req.previous_response_id).run_id
        latest = self.store.responses.latest_on_thread(conversation) if conversation else None
        return self.store.responses.get(latest).run_id if latest else None

    def container_of(self, run_id: str) -> str | None:
        resources = self.store.runs.record(run_id).tool_resources or {}
        return (resources.get("code_interpreter") or {}).get("container_id")

    def _brought_calls(self, run_id: str, thread_id: str, given: Input) -> dict[str, Any]:
        """The function calls a client sends as history, with their outputs: a finished step the run starts from
        (the executor reads it back to the model as it reads its own)."""
        calls = [{"id": c["call_id"], "type": "function", "function": {
            "name": c["name"], "arguments": c["arguments"], "output": given.outputs.get(c["call_id"], "")}}
            for c in given.calls]
        ts = now()
        return {"id": new_id("step"), "run_id": run_id, "thread_id": thread_id, "assistant_id": "",
                "created_at": ts, "completed_at": ts, "type": "tool_calls", "status": "completed",
                "step_details": {"type": "tool_calls", "tool_calls": calls}, "metadata": {}}

    def _check_fits(self, held: int, instructions: str, new: list[list[int]]) -> None:
        """400 when the context so far (`held` tokens), the new input and the instructions leave too little."""
        total = held + sum(len(t) for t in new)
        total += len(self.encode_system(instructions)) if instructions else 0
        if total > self.n_ctx - self.n_ctx // RESERVE:
            raise InvalidRequest(
                f"Your input exceeds the context window of this model ({total} of {self.n_ctx} tokens, leaving "
                "too little for the reply). Please adjust your input and try again, or set truncation to 'auto'.",
                param="input", code="context_length_exceeded")

    # --- read ---
    def get(self, response_id: str, include: tuple[str, ...] = ()) -> Response:
        return self.render(self.store.responses.get(response_id), include)

    def render(self, rec: ResponseRecord, include: tuple[str, ...] = ()) -> Response:
        record = self.store.runs.record(rec.run_id)
        run = record.run
        status: ResponseStatus = STATUS[run.status] if rec.until_step is None else "completed"
        output: list[dict[str, Any]] = []
        for step in self.store.responses.steps(rec.run_id, rec.since_step, rec.until_step):
            if step["type"] == "tool_calls":
                output += call_items(step, include, container_id=self.container_of(rec.run_id) or "")
            else:
                message_id = step["step_details"]["message_creation"]["message_id"]
                row = self.store.messages.decoded_row(rec.thread_id, message_id)
                output.append(message_item(row, logprobs=LOGPROBS in include))
        ended = status not in ("queued", "in_progress")
        details = run.x_details
        # The run's counters, not run.usage: a run waiting for function outputs shows none, but the response that
        # ended with those calls is over and has its usage, as in the real API.
        usage = ResponseUsage(
            input_tokens=record.prompt_tokens, output_tokens=record.completion_tokens,
            total_tokens=record.prompt_tokens + record.completion_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=details.cached_prompt_tokens),
            output_tokens_details=OutputTokensDetails()) if ended else None
        error = None
        if status == "failed":
            last = run.last_error or {"code": "server_error", "message": "The response expired."}
            error = {"code": last.get("code") or "server_error", "message": last.get("message") or ""}
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        echo = rec.request
        return Response(
            id=rec.id, created_at=rec.created_at, status=status, output=output, usage=usage, error=error,
            incomplete_details=incomplete, completed_at=run.completed_at if status == "completed" else None,
            model=echo.get("model") or run.model, instructions=echo.get("instructions"),
            tools=echo.get("tools") or [], tool_choice=echo.get("tool_choice") or "auto",
            text=echo.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            temperature=run.temperature, top_p=run.top_p, max_output_tokens=echo.get("max_output_tokens"),
            max_tool_calls=echo.get("max_tool_calls"), parallel_tool_calls=echo.get("parallel_tool_calls", True),
            previous_response_id=rec.previous_response_id,
            conversation={"id": rec.conversation_id} if rec.conversation_id else None,
            truncation=echo.get("truncation") or "disabled", metadata=echo.get("metadata") or {},
            reasoning=echo.get("reasoning") or {"effort": None, "summary": None},
            service_tier=echo.get("service_tier") or "default", user=echo.get("user"),
            safety_identifier=echo.get("safety_identifier"), prompt_cache_key=echo.get("prompt_cache_key"),
            top_logprobs=echo.get("top_logprobs") or 0, background=rec.background, store=rec.store)

    def run_of(self, response_id: str) -> tuple[str, str]:
        """(thread id, run id) of a response: the face listens there while it runs."""
        rec = self.store.responses.get(response_id)
        return rec.thread_id, rec.run_id

    def input_items(self, response_id: str, params: ListParams) -> Page[dict[str, Any]]:
        items = self.store.responses.get(response_id).input
        ordered = items if params.order == "asc" else list(reversed(items))
        ids = [i["id"] for i in ordered]
        start = ids.index(params.after) + 1 if params.after in ids else 0
        end = ids.index(params.before) if params.before in ids else len(ordered)
        data = ordered[start:end][: params.limit]
        return Page[dict[str, Any]](data=data, first_id=data[0]["id"] if data else None,
                                    last_id=data[-1]["id"] if data else None,
                                    has_more=start + len(data) < end)

    def count_input_tokens(self, req: InputTokensCount) -> InputTokens:
        given = read_input(req.input, new_id, self._read_file, self._refer)
        total = 0
        if req.previous_response_id:
            total += self.store.messages.total_tokens(self.store.responses.get(req.previous_response_id).thread_id)
        elif req.conversation is not None:
            conv = req.conversation if isinstance(req.conversation, str) else req.conversation.id
            total += self.store.messages.total_tokens(conv) if _exists(self.store, conv) else 0
        # Messages, calls and outputs as the model reads them (a conversation's rows, counted as stored).
        total += sum(len(tokens) for _, tokens in self.conversations.rows("", given, check_ids=False))
        instructions = "\n\n".join([req.instructions or "", *given.instructions]).strip()
        offered = run_tools(req.tools).tools if req.tool_choice != "none" else []  # "none" describes no tools
        total += self.count_system(instructions, offered)
        return InputTokens(input_tokens=total)

    # --- modify ---
    def cancel(self, response_id: str) -> Response:
        rec = self.store.responses.get(response_id)
        if not rec.background:
            raise InvalidRequest("Only responses created with background=true can be cancelled.", param=None)
        run = self.store.runs.get(None, rec.run_id)
        if STATUS[run.status] in ("queued", "in_progress") and rec.until_step is None:
            self.runs.cancel(rec.thread_id, rec.run_id)
        return self.get(response_id)

    def delete(self, response_id: str) -> ResponseDeleted:
        self.forget(self.store.responses.get(response_id))
        return ResponseDeleted(id=response_id)

    def sweep(self, ts: int) -> None:
        """Remove what `store: false` left: the responses whose reply went out unread (a stream the client left, a
        background response), UNKEPT_S after they were made, as the real API keeps them about that long."""
        for response_id in self.store.responses.unkept(ts - UNKEPT_S):
            try:
                self.discard(self.store.responses.get(response_id))
            except NotFound:
                continue  # forgotten by its reader meanwhile

    def discard(self, rec: ResponseRecord) -> None:
        """Remove a response and its thread, whatever state its run is in (a chat completion's: its thread is
        its own, and a call it ended with is the client's to run)."""
        self.store.responses.delete(rec.id)
        if not rec.thread_id.startswith("conv_"):
            self.store.threads.delete(rec.thread_id)

    def forget(self, rec: ResponseRecord) -> None:
        """Remove a response (and its thread, when nothing else uses it and it is no conversation)."""
        self.store.responses.delete(rec.id)
        if not rec.thread_id.startswith("conv_") and not self.store.responses.uses_thread(rec.thread_id) \
                and self.store.runs.active(rec.thread_id) is None:
            self.store.threads.delete(rec.thread_id)


def _exists(store: Store, thread_id: str) -> bool:
    try:
        store.threads.row(thread_id)
    except NotFound:
        return False
    return True


def _allowed(tools: list[dict[str, Any]], allowed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's tools that `tool_choice: {"type": "allowed_tools", ...}` lets the model call."""
    def name(tool: dict[str, Any]) -> tuple[str, str | None]:
        body = tool.get(tool["type"]) if isinstance(tool.get(tool["type"]), dict) else tool
        return tool["type"], (body or {}).get("name")

    wanted = {name(t) for t in allowed if isinstance(t, dict) and "type" in t}
    return [t for t in tools if name(t) in wanted or (t["type"], None) in wanted]
