"""/v1/assistants."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_assistants.api.endpoint import answer, engine, list_params
from offline_assistants.schemas.assistants import AssistantCreate, AssistantUpdate
from offline_assistants.schemas.validation import parse_body


async def create_assistant(request: Request) -> Response:
    req = parse_body(AssistantCreate, await request.body())
    return await answer(engine(request).assistants.create, req)


async def list_assistants(request: Request) -> Response:
    return await answer(engine(request).assistants.list, list_params(request))


async def get_assistant(request: Request) -> Response:
    return await answer(engine(request).assistants.get, request.path_params["assistant_id"])


async def update_assistant(request: Request) -> Response:
    req = parse_body(AssistantUpdate, await request.body())
    return await answer(engine(request).assistants.update, request.path_params["assistant_id"], req)


async def delete_assistant(request: Request) -> Response:
    return await answer(engine(request).assistants.delete, request.path_params["assistant_id"])


routes = [
    Route("/v1/assistants", create_assistant, methods=["POST"]),
    Route("/v1/assistants", list_assistants, methods=["GET"]),
    Route("/v1/assistants/{assistant_id}", get_assistant, methods=["GET"]),
    Route("/v1/assistants/{assistant_id}", update_assistant, methods=["POST"]),
    Route("/v1/assistants/{assistant_id}", delete_assistant, methods=["DELETE"]),
]
