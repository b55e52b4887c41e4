"""/v1/models: every model name answers, since any name maps to the one loaded local model."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_assistants.api.endpoint import answer, engine, respond
from offline_assistants.engine import Engine


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "offline-assistants"}


def _models(e: Engine) -> dict[str, Any]:
    from offline_assistants.llm.catalog import available

    names = [e.backend.name] + [m.name for m in available(e.settings.models_dir) if m.name != e.backend.name]
    return {"object": "list", "data": [_model(n) for n in names]}


async def list_models(request: Request) -> Response:
    return await answer(_models, engine(request))


async def get_model(request: Request) -> Response:
    return respond(_model(request.path_params["model"]))


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    # `:path`: a model name may hold slashes (`org/name`).
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
