"""/v1/threads/{thread_id}/messages."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, list_params
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.api.threads import THREAD
from offline_assistants.schemas.common import Deleted, ListParams, Page
from offline_assistants.schemas.messages import Message, MessageCreate, MessageListParams, MessageUpdate
from offline_assistants.schemas.validation import parse_query

MESSAGES = THREAD + "/messages"
MESSAGE = MESSAGES + "/{message_id}"


async def create_message(request: Request) -> Response:
    req = await json_body(request, MessageCreate)
    return await answer(engine(request).threads.add_message, request.path_params["thread_id"], req)


async def list_messages(request: Request) -> Response:
    run_id = parse_query(MessageListParams, dict(request.query_params)).run_id
    return await answer(engine(request).threads.list_messages, request.path_params["thread_id"],
                        list_params(request), run_id)


async def get_message(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).threads.get_message, p["thread_id"], p["message_id"])


async def update_message(request: Request) -> Response:
    req = await json_body(request, MessageUpdate)
    p = request.path_params
    return await answer(engine(request).threads.update_message, p["thread_id"], p["message_id"], req)


async def delete_message(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).threads.delete_message, p["thread_id"], p["message_id"])


routes = [
    Operation("POST", MESSAGES, create_message,
              Doc("createMessage", "Create a message.", Message, body=MessageCreate)),
    Operation("GET", MESSAGES, list_messages,
              Doc("listMessages", "List the messages of a thread.", Page[Message], query=ListParams,
                  extra_query={"run_id": {"type": "string"}})),
    Operation("GET", MESSAGE, get_message, Doc("getMessage", "Retrieve a message.", Message)),
    Operation("POST", MESSAGE, update_message,
              Doc("modifyMessage", "Modify a message.", Message, body=MessageUpdate)),
    Operation("DELETE", MESSAGE, delete_message, Doc("deleteMessage", "Delete a message.", Deleted)),
]
