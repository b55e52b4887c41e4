"""/v1/assistants."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, list_params
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.schemas.assistants import Assistant, AssistantCreate, AssistantUpdate
from offline_assistants.schemas.common import Deleted, ListParams, Page


async def create_assistant(request: Request) -> Response:
    req = await json_body(request, AssistantCreate)
    return await answer(engine(request).assistants.create, req)


async def list_assistants(request: Request) -> Response:
    return await answer(engine(request).assistants.list, list_params(request))


async def get_assistant(request: Request) -> Response:
    return await answer(engine(request).assistants.get, request.path_params["assistant_id"])


async def update_assistant(request: Request) -> Response:
    req = await json_body(request, AssistantUpdate)
    return await answer(engine(request).assistants.update, request.path_params["assistant_id"], req)


async def delete_assistant(request: Request) -> Response:
    return await answer(engine(request).assistants.delete, request.path_params["assistant_id"])


ASSISTANT = "/v1/assistants/{assistant_id}"

routes = [
    Operation("POST", "/v1/assistants", create_assistant,
              Doc("createAssistant", "Create an assistant.", Assistant, body=AssistantCreate)),
    Operation("GET", "/v1/assistants", list_assistants,
              Doc("listAssistants", "List assistants.", Page[Assistant], query=ListParams)),
    Operation("GET", ASSISTANT, get_assistant, Doc("getAssistant", "Retrieve an assistant.", Assistant)),
    Operation("POST", ASSISTANT, update_assistant,
              Doc("modifyAssistant", "Modify an assistant.", Assistant, body=AssistantUpdate)),
    Operation("DELETE", ASSISTANT, delete_assistant, Doc("deleteAssistant", "Delete an assistant.", Deleted)),
]
