"""/v1/responses: the Responses API, a face on the same engine as the Assistants API (engine/responses.py).

A response is created, waited for (or streamed, or left running in the background) and read back from the run
that does its work. `store: false` keeps nothing once the reply has gone out.
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

from offline_assistants.api.endpoint import answer, engine, json_body, list_params, respond
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.api.response_stream import TERMINAL, ResponseEvents
from offline_assistants.engine import Engine
from offline_assistants.engine.events import Event
from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.conversations import Item
from offline_assistants.schemas.responses import (
    InputTokens,
    InputTokensCount,
    Response,
    ResponseCreate,
    ResponseDeleted,
)

RESPONSE = "/v1/responses/{response_id}"
INCLUDABLE = ("file_search_call.results", "code_interpreter_call.outputs", "message.output_text.logprobs",
              "message.input_image.image_url", "computer_call_output.output.image_url",
              "reasoning.encrypted_content", "web_search_call.action.sources", "web_search_call.results")


async def create_response(request: Request) -> HTTPResponse:
    eng = engine(request)
    req = await json_body(request, ResponseCreate)
    include = tuple(req.include or ())
    if req.stream:
        return await _stream(eng, req, include)
    if req.background:
        response_id, _ = await run_in_threadpool(eng.responses.create, req, None)
        return await answer(eng.responses.get, response_id, include)
    loop = asyncio.get_running_loop()
    ended: asyncio.Queue[Event] = asyncio.Queue()

    def listener(event: Event) -> None:
        if event.event in TERMINAL:
            loop.call_soon_threadsafe(ended.put_nowait, event)

    response_id, sub = await run_in_threadpool(eng.responses.create, req, listener)
    try:
        _, run_id = await run_in_threadpool(eng.responses.run_of, response_id)
        while (await ended.get()).data.get("id") != run_id:
            pass
    finally:
        if sub is not None:
            sub.close()
    return respond(await run_in_threadpool(_final, eng, response_id, include))


def _final(eng: Engine, response_id: str, include: tuple[str, ...]) -> Response:
    """The response once its run stopped; forgotten at once under `store: false`."""
    record = eng.store.responses.get(response_id)
    response = eng.responses.render(record, include)
    if not record.store:
        eng.responses.forget(record)
    return response


async def _stream(eng: Engine, req: ResponseCreate, include: tuple[str, ...]) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Event] = asyncio.Queue()

    def listener(event: Event) -> None:
        loop.call_soon_threadsafe(inbox.put_nowait, event)

    response_id, sub = await run_in_threadpool(eng.responses.create, req, listener)
    thread_id, run_id = await run_in_threadpool(eng.responses.run_of, response_id)
    record = eng.store.responses.get(response_id)
    events = ResponseEvents(lambda: eng.responses.render(eng.store.responses.get(response_id), include)
                            .model_dump(mode="json"), container_id=eng.responses.container_of(run_id) or "")
    # The first snapshot is taken now: by the time it is read the run may have moved on.
    first = events.start(background=bool(req.background))

    async def body() -> AsyncIterator[str]:
        try:
            yield "".join(_frame(kind, data) for kind, data in first)
            while not events.finished:
                batch = [await inbox.get()]
                while not inbox.empty():
                    batch.append(inbox.get_nowait())
                chunks = []
                for event in batch:
                    if _run_of(event) not in (run_id, None):
                        continue
                    chunks += [_frame(kind, data) for kind, data in events.feed(event)]
                    if events.finished:
                        break
                yield "".join(chunks)
        finally:
            if sub is not None:
                sub.close()
            if not record.store and events.finished:
                await run_in_threadpool(eng.responses.forget, record)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _run_of(event: Event) -> str | None:
    data = event.data
    if event.event.startswith("thread.run.step"):
        return data.get("run_id")
    if event.event.startswith("thread.run."):
        return data.get("id")
    return data.get("run_id")


def _frame(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def get_response(request: Request) -> HTTPResponse:
    if request.query_params.get("stream") in ("true", "1"):
        raise InvalidRequest("Resuming a response's stream is not supported yet: retrieve it without `stream`.",
                             param="stream", code="unsupported_parameter")
    return await answer(engine(request).responses.get, request.path_params["response_id"], _include(request))


async def delete_response(request: Request) -> HTTPResponse:
    return await answer(engine(request).responses.delete, request.path_params["response_id"])


async def cancel_response(request: Request) -> HTTPResponse:
    return await answer(engine(request).responses.cancel, request.path_params["response_id"])


async def list_input_items(request: Request) -> HTTPResponse:
    return await answer(engine(request).responses.input_items, request.path_params["response_id"],
                        list_params(request))


async def count_input_tokens(request: Request) -> HTTPResponse:
    req = await json_body(request, InputTokensCount)
    return await answer(engine(request).responses.count_input_tokens, req)


def _include(request: Request) -> tuple[str, ...]:
    given = tuple(request.query_params.getlist("include[]") + request.query_params.getlist("include"))
    for i, value in enumerate(given):
        if value not in INCLUDABLE:
            raise InvalidRequest(f"Invalid value: '{value}'.", param=f"include[{i}]", code="invalid_value")
    return given


routes = [
    Operation("POST", "/v1/responses/input_tokens", count_input_tokens,
              Doc("getInputTokenCounts", "Count a response's input tokens.", InputTokens, body=InputTokensCount)),
    Operation("POST", "/v1/responses", create_response,
              Doc("createResponse", "Create a model response.", Response, body=ResponseCreate, streams=True)),
    Operation("GET", RESPONSE, get_response, Doc("getResponse", "Retrieve a model response.", Response)),
    Operation("DELETE", RESPONSE, delete_response, Doc("deleteResponse", "Delete a model response.",
                                                       ResponseDeleted)),
    Operation("POST", RESPONSE + "/cancel", cancel_response,
              Doc("cancelResponse", "Cancel a background response.", Response)),
    Operation("GET", RESPONSE + "/input_items", list_input_items,
              Doc("listInputItems", "List a response's input items.", Page[Item], query=ListParams)),
]
