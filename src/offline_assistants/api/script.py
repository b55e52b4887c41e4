"""/_script: the scripted model's control API, for app tests in any language (only when the server runs
`--model scripted`; outside /v1, behind the API key when one is set).

    POST   /_script/steps  {"steps": [{"kind": "call", "name": "get_weather", "arguments": {"city": "Paris"}},
                                      {"kind": "reply", "text": "Sunny."}],
                            "thread_id": null, "assistant_id": null, "parallel": false}
    GET    /_script        the steps left, and every prompt the model was shown
    DELETE /_script        forget all steps and prompts
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from offline_assistants.api.endpoint import engine
from offline_assistants.errors import InvalidRequest
from offline_assistants.script import Script, ScriptedModel, Step


def _script(request: Request) -> Script:
    backend = engine(request).backend
    assert isinstance(backend, ScriptedModel)  # the routes exist only then (api/app.py)
    return backend.script


async def add_steps(request: Request) -> Response:
    try:
        body: Any = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict) or not isinstance(body.get("steps"), list):
        raise InvalidRequest("Missing required parameter: 'steps'.", param="steps", code="missing_required_parameter")
    unknown = set(body) - {"steps", "thread_id", "assistant_id", "parallel"}
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument supplied: {sorted(unknown)[0]}", param=sorted(unknown)[0],
                             code="unknown_parameter")
    steps: list[Step] = []
    for i, raw in enumerate(body["steps"]):
        try:
            steps.append(Step.from_json(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidRequest(f"Invalid 'steps[{i}]': {exc}", param=f"steps[{i}]") from None
    script = _script(request)
    scope: Any = script
    if body.get("thread_id"):
        scope = script.thread(str(body["thread_id"]))
    elif body.get("assistant_id"):
        scope = script.assistant(str(body["assistant_id"]))
    if body.get("parallel"):
        if not all(s.kind == "call" for s in steps):
            raise InvalidRequest("Only calls can be parallel.", param="parallel")
        scope.calls(*[(s.name, json.loads(s.text)) for s in steps])
    else:
        for step in steps:
            scope._add(step)
    return JSONResponse({"object": "script", "remaining": len(script.remaining())})


async def show(request: Request) -> Response:
    script = _script(request)
    return JSONResponse({"object": "script", "steps": [s.describe() for s in script.remaining()],
                         "prompts": script.prompts})


async def clear(request: Request) -> Response:
    _script(request).clear()
    return JSONResponse({"object": "script", "remaining": 0})


routes = [
    Route("/_script/steps", add_steps, methods=["POST"]),
    Route("/_script", show, methods=["GET"]),
    Route("/_script", clear, methods=["DELETE"]),
]
