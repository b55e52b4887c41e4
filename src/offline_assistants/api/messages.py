"""/v1/threads/{thread_id}/messages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_assistants.api.endpoint import answer, engine, list_params
from offline_assistants.api.threads import THREAD
from offline_assistants.schemas.messages import MessageCreate, MessageListParams, MessageUpdate
from offline_assistants.schemas.validation import parse_body, parse_query

MESSAGES = THREAD + "/messages"
MESSAGE = MESSAGES + "/{message_id}"


async def create_message(request: Request) -> Response:
    req = parse_body(MessageCreate, await request.body())
    return await answer(engine(request).threads.add_message, request.path_params["thread_id"], req)


async def list_messages(request: Request) -> Response:
    run_id = parse_query(MessageListParams, dict(request.query_params)).run_id
    return await answer(engine(request).threads.list_messages, request.path_params["thread_id"],
                        list_params(request), run_id)


async def get_message(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).threads.get_message, p["thread_id"], p["message_id"])


async def update_message(request: Request) -> Response:
    req = parse_body(MessageUpdate, await request.body())
    p = request.path_params
    return await answer(engine(request).threads.update_message, p["thread_id"], p["message_id"], req)


async def delete_message(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).threads.delete_message, p["thread_id"], p["message_id"])


routes = [
    Route(MESSAGES, create_message, methods=["POST"]),
    Route(MESSAGES, list_messages, methods=["GET"]),
    Route(MESSAGE, get_message, methods=["GET"]),
    Route(MESSAGE, update_message, methods=["POST"]),
    Route(MESSAGE, delete_message, methods=["DELETE"]),
]
