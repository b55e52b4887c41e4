"""What every endpoint shares: the engine on the app's state, engine calls on the thread pool, JSON replies.

Endpoints are plain `async def f(request) -> Response` functions; they find the engine through the request, so
no route closes over an engine and one module of routes serves any app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from offline_assistants.engine import Engine
from offline_assistants.schemas.common import ListParams
from offline_assistants.schemas.runs import Run
from offline_assistants.schemas.validation import parse_query

P = ParamSpec("P")

Reply = BaseModel | dict[str, Any] | Response

# The SDK's polling helpers (create_and_poll and the like) wait as long as this header says between polls.
POLL_AFTER_MS = "200"


def engine(request: Request) -> Engine:
    e: Engine = request.app.state.engine
    return e


def respond(value: Reply) -> Response:
    if isinstance(value, Response):
        return value
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if isinstance(value, Run) else None
    if isinstance(value, BaseModel):
        return JSONResponse(value.model_dump(mode="json"), headers=headers)
    return JSONResponse(value, headers=headers)


async def answer(fn: Callable[P, Reply], *args: P.args, **kwargs: P.kwargs) -> Response:
    """Reply with what `fn` returns, called on the thread pool: SQLite and the tokenizer block the event loop."""
    return respond(await run_in_threadpool(fn, *args, **kwargs))


def list_params(request: Request) -> ListParams:
    return parse_query(ListParams, dict(request.query_params))
