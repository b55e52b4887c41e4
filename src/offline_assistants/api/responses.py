"""/v1/responses: the Responses API, a face on the same engine as the Assistants API (engine/responses.py).

A response is created, waited for (or streamed, or left running in the background) and read back from the run
that does its work. `store: false` keeps nothing once the reply has gone out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, get_args

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response as HTTPResponse
from starlette.responses import StreamingResponse

from offline_assistants.api.endpoint import answer, engine, json_body, list_params, respond
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.api.response_recording import Recording, Recordings, replay
from offline_assistants.api.response_stream import TERMINAL
from offline_assistants.engine import Engine
from offline_assistants.engine.events import Event
from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.conversations import Item
from offline_assistants.schemas.responses import (
    Includable,
    InputTokens,
    InputTokensCount,
    Response,
    ResponseCreate,
    ResponseDeleted,
)

RESPONSE = "/v1/responses/{response_id}"
INCLUDABLE = get_args(Includable)  # one list: the request model's
CANCEL_WAIT_S = 30.0  # how long a cancel waits for the run to stop, so its reply reads `cancelled`
# Retrieve's query: `stream` (a background response only) replays its events after `starting_after`, then follows.
RETRIEVE: dict[str, dict[str, Any]] = {
    "include[]": {"type": "array", "items": {"type": "string", "enum": list(INCLUDABLE)}},
    "stream": {"type": "boolean"}, "starting_after": {"type": "integer", "minimum": 0}}



async def create_response(request: Request) -> HTTPResponse:
    eng = engine(request)
    req = await json_body(request, ResponseCreate)
    include = tuple(req.include or ())
    if req.stream:
        recording = await recordings(request).start(eng, req, include, forget=True)
        return _sse(recording)
    if req.background:
        recording = await recordings(request).start(eng, req, include, forget=False)
        return await answer(eng.responses.get, recording.response_id, include)
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


def recordings(request: Request) -> Recordings:
    found: Recordings = request.app.state.recordings
    return found


def _sse(recording: Recording, after: int = -1) -> StreamingResponse:
    """The recording's events after `after` as server-sent events, then `[DONE]` (as Open Responses has it). A
    client that goes away stops only its own reading: the recording, and the run, go on."""
    async def body() -> AsyncIterator[str]:
        async for batch in recording.follow(after):
            yield "".join(_frame(event) for event in batch)
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _frame(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


async def get_response(request: Request) -> HTTPResponse:
    response_id = request.path_params["response_id"]
    include = _include(request)
    stream = _one(request, "stream", ("true", "false"), "a boolean")
    after = _one(request, "starting_after", None, "a non-negative integer")
    if stream != "true":
        return await answer(engine(request).responses.get, response_id, include)
    eng = engine(request)
    record = await run_in_threadpool(eng.store.responses.get, response_id)
    if not record.background:
        raise InvalidRequest("Only responses created with background=true can be streamed after they were created: "
                             "retrieve this one without `stream`.", param="stream", code="invalid_value")
    live = recordings(request).live(response_id)
    if live is None:  # the response ended (perhaps in an earlier process): its events are stored
        live = Recording(response_id, await run_in_threadpool(replay, eng, response_id), finished=True)
    return _sse(live, -1 if after is None else int(after))


def _one(request: Request, name: str, allowed: tuple[str, ...] | None, kind: str) -> str | None:
    """A query parameter given at most once: one of `allowed`, or digits where none are listed."""
    given = request.query_params.getlist(name)
    if not given:
        return None
    value = given[0]
    if len(given) > 1 or (value not in allowed if allowed is not None else not value.isdigit()):
        shown = given if len(given) > 1 else value
        raise InvalidRequest(f"Invalid '{name}': expected {kind}, but got {shown!r}.", param=name,
                             code="invalid_value")
    return value


async def delete_response(request: Request) -> HTTPResponse:
    return await answer(engine(request).responses.delete, request.path_params["response_id"])


async def cancel_response(request: Request) -> HTTPResponse:
    response_id = request.path_params["response_id"]
    eng = engine(request)
    cancelled = await run_in_threadpool(eng.responses.cancel, response_id)
    live = recordings(request).live(response_id)
    if live is None or cancelled.status not in ("queued", "in_progress"):
        return respond(cancelled)
    # The run stops at its next token or tool call: answer once it has.
    await live.ended(CANCEL_WAIT_S)
    return await answer(eng.responses.get, response_id)


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
    Operation("GET", RESPONSE, get_response,
              Doc("getResponse", "Retrieve a model response (or stream a background one, again).", Response,
                  extra_query=RETRIEVE, streams=True)),
    Operation("DELETE", RESPONSE, delete_response, Doc("deleteResponse", "Delete a model response.",
                                                       ResponseDeleted)),
    Operation("POST", RESPONSE + "/cancel", cancel_response,
              Doc("cancelResponse", "Cancel a background response.", Response)),
    Operation("GET", RESPONSE + "/input_items", list_input_items,
              Doc("listInputItems", "List a response's input items.", Page[Item], query=ListParams)),
]
