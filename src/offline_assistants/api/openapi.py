"""GET /openapi.json: the API's OpenAPI 3.1 document, built from the routes' own declarations (api/operation.py).

Paths, parameters and operation ids are named as in OpenAI's spec (`/v1/threads/{thread_id}/runs`, `createRun`),
so generic tools (schemathesis, client generators) and people reading the spec side by side see the same API.
Request bodies are the very pydantic models that validate them; replies are the models the engine returns; every
error reply is the one envelope.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from offline_assistants import __version__
from offline_assistants.api.operation import Operation

Refs = dict[Any, Any]  # (model, mode) -> {"$ref": ...}
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
_REF = "#/components/schemas/{model}"

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}},
    }},
}


def document(routes: Sequence[BaseRoute], *, api_key: bool = False) -> dict[str, Any]:
    operations = [r for r in routes if isinstance(r, Operation)]
    refs, definitions = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = _PARAM.sub(r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, refs)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "offline-assistants", "version": __version__,
                 "description": "OpenAI's Assistants API (v2), served offline."},
        "paths": paths,
        "components": {"schemas": {**definitions, "Error": ERROR}},
    }
    if api_key:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    return doc


def _schemas(operations: list[Operation]) -> tuple[Refs, dict[str, Any]]:
    """One JSON schema per model, each model once, with `$ref`s between them."""
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in operations:
        for model, mode in ((op.doc.body, "validation"), (op.doc.returns, "serialization")):
            if isinstance(model, type) and issubclass(model, BaseModel) and (model, mode) not in wanted:
                wanted.append((model, mode))  # type: ignore[arg-type]  # mode is one of the two literals
    refs, top = models_json_schema(wanted, ref_template=_REF)
    return dict(refs), dict(top.get("$defs", {}))


def _operation(op: Operation, refs: Refs) -> dict[str, Any]:
    doc = op.doc
    out: dict[str, Any] = {"operationId": doc.operation_id, "summary": doc.summary,
                           "parameters": [*_path_parameters(op), *_query_parameters(op)]}
    content: dict[str, Any] = {}
    if doc.body is not None:
        content["application/json"] = {"schema": refs[(doc.body, "validation")]}
    if doc.form is not None:  # an upload; some operations take either (a container file: upload or file_id)
        content["multipart/form-data"] = {"schema": {
            "type": "object", "properties": dict(doc.form), "required": list(doc.required_form)}}
    if content:
        out["requestBody"] = {"required": doc.form is not None, "content": content}
    out["responses"] = {"200": {"description": "OK", "content": _reply(op, refs)},
                        "default": {"description": "An error, in OpenAI's envelope.",
                                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}}
    return out


def _reply(op: Operation, refs: Refs) -> dict[str, Any]:
    if op.doc.returns is bytes:
        return {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    content: dict[str, Any] = {"application/json": {"schema": refs[(op.doc.returns, "serialization")]}}
    if op.doc.streams:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    return content


def _path_parameters(op: Operation) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(op.path)]


def _query_parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if op.doc.query is not None:
        schema = op.doc.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = _not_null({k: v for k, v in prop.items() if k not in ("title", "default")})
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    for name, prop in op.doc.extra_query.items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": dict(prop)}
        if prop.get("type") == "array":
            param.update(style="form", explode=True)
        params.append(param)
    return params


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value: pydantic's `X | None` is just X there (there is no null in a URL)."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**rest, **branches[0]}
    return schema


async def openapi_json(request: Request) -> Response:
    routes: list[BaseRoute] = request.app.routes
    return JSONResponse(document(routes, api_key=bool(request.app.state.api_key)))


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
