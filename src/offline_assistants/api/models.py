"""/v1/models: every model name answers, since any name maps to the one loaded local model (or, for
/v1/embeddings, to the one embedding model)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, respond
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.engine import Engine
from offline_assistants.schemas.models import Model, ModelList


def _model(name: str) -> Model:
    return Model(id=name, created=0, owned_by="offline-assistants")


def _models(e: Engine) -> ModelList:
    from offline_assistants.llm.catalog import available

    names = [e.backend.name] + [m.name for m in available(e.settings.models_dir) if m.name != e.backend.name]
    names += [n for n in e.embeddings.model_names() if n not in names]
    return ModelList(data=[_model(n) for n in names])


async def list_models(request: Request) -> Response:
    return await answer(_models, engine(request))


async def get_model(request: Request) -> Response:
    return respond(_model(request.path_params["model"]))


routes = [
    Operation("GET", "/v1/models", list_models, Doc("listModels", "List the models.", ModelList)),
    # `:path`: a model name may hold slashes (`org/name`).
    Operation("GET", "/v1/models/{model:path}", get_model, Doc("retrieveModel", "Retrieve a model.", Model)),
]
