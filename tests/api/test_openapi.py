"""/openapi.json: served outside /v1, named as OpenAI names its paths, and in step with the routes."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from offline_assistants.api import create_app
from offline_assistants.api.operation import Operation
from offline_assistants.engine import Engine

_CONVERTOR = re.compile(r"{(\w+):\w+}")


def _sdk_paths() -> set[str]:
    """Every path of these resources that the official SDK calls, read off its source: the real API's names."""
    found: set[str] = set()
    for source in (Path(openai.__file__).parent / "resources").rglob("*.py"):
        names = "assistants|threads|files|uploads|vector_stores|models|responses|conversations|containers|chat|" \
            "embeddings"
        paths = rf'"(/(?:{names})[^"?]*)'
        found.update(re.findall(paths, source.read_text()))
    return found


def test_every_route_is_documented_and_the_document_holds_exactly_the_routes(engine: Engine) -> None:
    app = create_app(engine)
    undocumented = [r.path for r in app.routes
                    if isinstance(r, Route) and r.path.startswith("/v1") and not isinstance(r, Operation)]
    assert undocumented == []
    operations = {(_CONVERTOR.sub(r"{\1}", r.path), r.method.lower()) for r in app.routes if isinstance(r, Operation)}

    doc = TestClient(app).get("/openapi.json").json()
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == operations
    assert len(documented) == 78  # the Assistants API's 50, listThreads, responses 6, conversations 8,
    # listConversations and x_convertThread, containers 9, chat 1, embeddings 1
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_paths_are_named_as_the_real_api_names_them(engine: Engine) -> None:
    doc = _document(engine)
    ours = {path.removeprefix("/v1") for path in doc["paths"]}
    sdk = _sdk_paths()
    assert "/threads/{thread_id}/runs" in sdk  # the reading of the SDK works
    # The SDK builds a few paths from pieces (`.../steps/{step_id}`, `.../file_batches/{batch_id}/cancel`): each of
    # ours is either one of its paths or extends one by a segment the real API documents.
    unknown = {p for p in ours if p not in sdk and not any(p.startswith(s + "/") for s in sdk)}
    assert unknown == set()


def test_the_document_describes_bodies_replies_and_errors(engine: Engine) -> None:
    doc = _document(engine)
    create_run = doc["paths"]["/v1/threads/{thread_id}/runs"]["post"]
    assert create_run["operationId"] == "createRun"
    body = create_run["requestBody"]["content"]["application/json"]["schema"]
    run_create = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert run_create["additionalProperties"] is False  # unknown fields are refused, and the document says so
    assert "assistant_id" in run_create["required"]
    assert set(create_run["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert create_run["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    upload = doc["paths"]["/v1/files"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert upload["required"] == ["file", "purpose"]
    limit = next(p for p in doc["paths"]["/v1/assistants"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100


def test_with_an_api_key_the_document_asks_for_it(engine: Engine) -> None:
    app = create_app(engine, api_key="sk-secret")
    http = TestClient(app)
    assert http.get("/openapi.json").status_code == 401
    doc = http.get("/openapi.json", headers={"Authorization": "Bearer sk-secret"}).json()
    assert doc["security"] == [{"bearer": []}]


@pytest.mark.parametrize("path", ["/v1/openapi.json"])
def test_the_document_is_outside_v1(engine: Engine, path: str) -> None:
    http = TestClient(create_app(engine))
    assert http.get(path).status_code == 404


def _document(engine: Engine) -> dict:  # type: ignore[type-arg]
    http = TestClient(create_app(engine))
    doc: dict = http.get("/openapi.json").json()  # type: ignore[type-arg]
    return doc
