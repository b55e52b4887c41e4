"""/v1/threads: the threads themselves (their messages and runs have modules of their own).

`GET /v1/threads` (listThreads) is an extension: the real API has no list of threads (the hosted playground used
an undocumented one). It pages like every other list, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, list_params
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.schemas.common import Deleted, ListParams, Page
from offline_assistants.schemas.threads import Thread, ThreadCreate, ThreadUpdate

THREAD = "/v1/threads/{thread_id}"


async def create_thread(request: Request) -> Response:
    req = await json_body(request, ThreadCreate)
    return await answer(engine(request).threads.create, req)


async def list_threads(request: Request) -> Response:
    return await answer(engine(request).threads.list_threads, list_params(request))


async def get_thread(request: Request) -> Response:
    return await answer(engine(request).threads.get, request.path_params["thread_id"])


async def update_thread(request: Request) -> Response:
    req = await json_body(request, ThreadUpdate)
    return await answer(engine(request).threads.update, request.path_params["thread_id"], req)


async def delete_thread(request: Request) -> Response:
    return await answer(engine(request).threads.delete, request.path_params["thread_id"])


routes = [
    Operation("POST", "/v1/threads", create_thread, Doc("createThread", "Create a thread.", Thread, body=ThreadCreate)),
    Operation("GET", "/v1/threads", list_threads,
              Doc("listThreads", "List threads, newest first (an extension: the real API has no such list).",
                  Page[Thread], query=ListParams)),
    Operation("GET", THREAD, get_thread, Doc("getThread", "Retrieve a thread.", Thread)),
    Operation("POST", THREAD, update_thread, Doc("modifyThread", "Modify a thread.", Thread, body=ThreadUpdate)),
    Operation("DELETE", THREAD, delete_thread, Doc("deleteThread", "Delete a thread.", Deleted)),
]
