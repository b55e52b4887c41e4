"""/v1/chat/completions: Chat Completions, a face on the engine (engine/chat.py: a response that keeps nothing).

A completion streams as `chat.completion.chunk`s: the role first, then the content or the tool calls (each
call's id and name, then its arguments in pieces), the finish reason, the usage when `stream_options.include_usage`
asks for it, and `[DONE]`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response as HTTPResponse
from starlette.responses import StreamingResponse

from offline_assistants.api.endpoint import engine, json_body, respond
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.api.response_stream import TERMINAL
from offline_assistants.engine import Engine
from offline_assistants.engine.chat import (
    as_completion,
    as_response,
    chunk,
    completion_id,
    merged,
    sampling,
    usage_chunk,
)
from offline_assistants.engine.events import Event
from offline_assistants.schemas.chat import ChatCompletion, ChatCompletionCreate


def _finish(eng: Engine, response_ids: list[str], model: str, logprobs: bool = False) -> ChatCompletion:
    """The completion once its runs stopped, a choice each; their responses and threads are removed at once."""
    records = [eng.store.responses.get(r) for r in response_ids]
    completion = merged([as_completion(eng.responses.render(record, ("message.output_text.logprobs",)), model,
                                       logprobs=logprobs) for record in records])
    for record in records:
        eng.responses.discard(record)
    return completion


async def create_chat_completion(request: Request) -> HTTPResponse:
    eng = engine(request)
    req = await json_body(request, ChatCompletionCreate)
    as_req, asked = as_response(req), sampling(req)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[int, Event]] = asyncio.Queue()

    def start(index: int) -> tuple[str, Any]:
        def listener(event: Event) -> None:
            if req.stream or event.event in TERMINAL:
                loop.call_soon_threadsafe(inbox.put_nowait, (index, event))
        # `n` choices are `n` runs, decoded together in the model's batch; a seed gives each its own.
        seeded = {**asked, "seed": asked["seed"] + index} if "seed" in asked else asked
        return eng.responses.create(as_req, listener, sampling=seeded)

    started = [await run_in_threadpool(start, i) for i in range(req.n or 1)]
    ids = [response_id for response_id, _ in started]
    runs = [(await run_in_threadpool(eng.responses.run_of, r))[1] for r in ids]
    subs = [sub for _, sub in started]
    if not req.stream:
        try:
            left = set(runs)
            while left:
                _, event = await inbox.get()
                if event.event in TERMINAL:
                    left.discard(event.data.get("id"))
        finally:
            for sub in subs:
                if sub is not None:
                    sub.close()
        return respond(await run_in_threadpool(_finish, eng, ids, req.model, bool(req.logprobs)))
    usage = bool((req.stream_options or {}).get("include_usage"))
    return StreamingResponse(_chunks(eng, ids, runs, req.model, usage, inbox, subs),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _chunks(eng: Engine, ids: list[str], runs: list[str], model: str, include_usage: bool,
                  inbox: asyncio.Queue[tuple[int, Event]], subs: list[Any]) -> AsyncIterator[str]:
    cid, created = completion_id(ids[0]), int(eng.store.responses.get(ids[0]).created_at)
    calls: dict[int, dict[tuple[str, int], int]] = {}  # per choice: (step id, call index) -> its tool call index
    ended: dict[int, bool] = {}
    try:
        for index in range(len(ids)):
            yield _data(chunk(cid, model, created, {"role": "assistant", "content": ""}, index=index))
        while len(ended) < len(ids):
            index, event = await inbox.get()
            name, data = event.event, event.data
            if name == "thread.message.delta":
                text = "".join((p.get("text") or {}).get("value", "") for p in data["delta"].get("content") or [])
                if text:
                    yield _data(chunk(cid, model, created, {"content": text}, index=index))
            elif name == "thread.run.step.delta":
                for call in (data["delta"].get("step_details") or {}).get("tool_calls") or []:
                    piece = _call_delta(calls.setdefault(index, {}), data["id"], call)
                    if piece is not None:
                        yield _data(chunk(cid, model, created, {"tool_calls": [piece]}, index=index))
            elif name in TERMINAL and data.get("id") == runs[index]:
                ended[index] = True
        done = await run_in_threadpool(_finish, eng, ids, model)
        for choice in done.choices:
            yield _data(chunk(cid, model, created, {}, choice.finish_reason, index=choice.index))
        if include_usage:
            yield _data(usage_chunk(cid, model, created, done.usage))
        yield "data: [DONE]\n\n"
    finally:
        for sub in subs:
            if sub is not None:
                sub.close()


def _call_delta(calls: dict[tuple[str, int], int], step_id: str, call: dict[str, Any]) -> dict[str, Any] | None:
    if call.get("type") != "function":
        return None
    key = (step_id, call["index"])
    fn = call.get("function") or {}
    if key not in calls and call.get("id"):
        calls[key] = len(calls)
        return {"index": calls[key], "id": call["id"], "type": "function",
                "function": {"name": fn.get("name"), "arguments": fn.get("arguments") or ""}}
    if key in calls and fn.get("arguments"):
        return {"index": calls[key], "function": {"arguments": fn["arguments"]}}
    return None


def _data(value: dict[str, Any]) -> str:
    return f"data: {json.dumps(value, separators=(',', ':'))}\n\n"


routes = [
    Operation("POST", "/v1/chat/completions", create_chat_completion,
              Doc("createChatCompletion", "Create a chat completion.", ChatCompletion, body=ChatCompletionCreate,
                  streams=True)),
]
