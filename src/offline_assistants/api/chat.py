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
from offline_assistants.engine.chat import as_completion, as_response, chunk, completion_id, sampling, usage_chunk
from offline_assistants.engine.events import Event
from offline_assistants.schemas.chat import ChatCompletion, ChatCompletionCreate


def _finish(eng: Engine, response_id: str, model: str) -> ChatCompletion:
    """The completion once its run stopped; its response and thread are removed at once."""
    record = eng.store.responses.get(response_id)
    completion = as_completion(eng.responses.render(record), model)
    eng.responses.discard(record)
    return completion


async def create_chat_completion(request: Request) -> HTTPResponse:
    eng = engine(request)
    req = await json_body(request, ChatCompletionCreate)
    as_req = as_response(req)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Event] = asyncio.Queue()

    def listener(event: Event) -> None:
        if req.stream or event.event in TERMINAL:
            loop.call_soon_threadsafe(inbox.put_nowait, event)

    response_id, sub = await run_in_threadpool(
        lambda: eng.responses.create(as_req, listener, sampling=sampling(req)))
    _, run_id = await run_in_threadpool(eng.responses.run_of, response_id)
    if not req.stream:
        try:
            while not ((event := await inbox.get()).event in TERMINAL and event.data.get("id") == run_id):
                pass
        finally:
            if sub is not None:
                sub.close()
        return respond(await run_in_threadpool(_finish, eng, response_id, req.model))
    usage = bool((req.stream_options or {}).get("include_usage"))
    return StreamingResponse(_chunks(eng, response_id, run_id, req.model, usage, inbox, sub),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _chunks(eng: Engine, response_id: str, run_id: str, model: str, include_usage: bool,
                  inbox: asyncio.Queue[Event], sub: Any) -> AsyncIterator[str]:
    cid, created = completion_id(response_id), int(eng.store.responses.get(response_id).created_at)
    calls: dict[tuple[str, int], int] = {}  # (step id, call index) -> the completion's tool call index
    try:
        yield _data(chunk(cid, model, created, {"role": "assistant", "content": ""}))
        while True:
            event = await inbox.get()
            name, data = event.event, event.data
            if name == "thread.message.delta":
                text = "".join((p.get("text") or {}).get("value", "") for p in data["delta"].get("content") or [])
                if text:
                    yield _data(chunk(cid, model, created, {"content": text}))
            elif name == "thread.run.step.delta":
                for call in (data["delta"].get("step_details") or {}).get("tool_calls") or []:
                    piece = _call_delta(calls, data["id"], call)
                    if piece is not None:
                        yield _data(chunk(cid, model, created, {"tool_calls": [piece]}))
            elif name in TERMINAL and data.get("id") == run_id:
                done = await run_in_threadpool(_finish, eng, response_id, model)
                yield _data(chunk(cid, model, created, {}, done.choices[0].finish_reason))
                if include_usage:
                    yield _data(usage_chunk(cid, model, created, done.usage))
                yield "data: [DONE]\n\n"
                return
    finally:
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
