"""What every endpoint shares: the engine on the app's state, engine calls on the thread pool, JSON replies.

Endpoints are plain `async def f(request) -> Response` functions; they find the engine through the request, so
no route closes over an engine and one module of routes serves any app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from offline_assistants.engine import Engine
from offline_assistants.errors import PayloadTooLarge
from offline_assistants.schemas.common import ListParams
from offline_assistants.schemas.runs import Run
from offline_assistants.schemas.validation import parse_body, parse_query
from offline_assistants.schemas.vector_stores import VectorStoreFile, VectorStoreFileBatch

P = ParamSpec("P")
M = TypeVar("M", bound=BaseModel)

# The largest JSON body any request needs: a thread made with its 32 messages at their 256,000-character limit is
# ~8 MB of ASCII, and JSON escapes can grow text up to 6x. Past this a body is refused before it is read whole.
MAX_JSON_BODY_BYTES = 32 * 1024 * 1024

Reply = BaseModel | dict[str, Any] | Response

# The SDK's polling helpers (create_and_poll, upload_and_poll and the like) wait as long as this header says
# between polls (a second without it), on every kind of object they poll.
POLL_AFTER_MS = "200"
POLLED = (Run, VectorStoreFile, VectorStoreFileBatch)


def engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine
    return e


def respond(value: Reply) -> Response:
    if isinstance(value, Response):
        return value
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if isinstance(value, POLLED) else None
    if isinstance(value, BaseModel):
        return JSONResponse(value.model_dump(mode="json"), headers=headers)
    return JSONResponse(value, headers=headers)


async def answer(fn: Callable[P, Reply], *args: P.args, **kwargs: P.kwargs) -> Response:
    """Reply with what `fn` returns, called on the thread pool: SQLite and the tokenizer block the event loop."""
    return respond(await run_in_threadpool(fn, *args, **kwargs))


def list_params(request: Request) -> ListParams:
    return parse_query(ListParams, dict(request.query_params))


async def json_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`, refused with 413 past MAX_JSON_BODY_BYTES without buffering the rest."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_JSON_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return parse_body(model, b"".join(chunks))


def _too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is too large: the maximum is {MAX_JSON_BODY_BYTES} bytes.",
                           code="request_too_large")
