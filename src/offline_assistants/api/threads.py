"""/v1/threads/{thread_id}: the thread itself (its messages and runs have modules of their own)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_assistants.api.endpoint import answer, engine
from offline_assistants.schemas.threads import ThreadCreate, ThreadUpdate
from offline_assistants.schemas.validation import parse_body

THREAD = "/v1/threads/{thread_id}"


async def create_thread(request: Request) -> Response:
    req = parse_body(ThreadCreate, await request.body())
    return await answer(engine(request).threads.create, req)


async def get_thread(request: Request) -> Response:
    return await answer(engine(request).threads.get, request.path_params["thread_id"])


async def update_thread(request: Request) -> Response:
    req = parse_body(ThreadUpdate, await request.body())
    return await answer(engine(request).threads.update, request.path_params["thread_id"], req)


async def delete_thread(request: Request) -> Response:
    return await answer(engine(request).threads.delete, request.path_params["thread_id"])


routes = [
    Route("/v1/threads", create_thread, methods=["POST"]),
    Route(THREAD, get_thread, methods=["GET"]),
    Route(THREAD, update_thread, methods=["POST"]),
    Route(THREAD, delete_thread, methods=["DELETE"]),
]
