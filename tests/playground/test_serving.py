"""How the server serves the playground: the page at / and its files under /playground/ load without the API key
(nothing else does), with JavaScript MIME types for its modules, a Content-Security-Policy that lets the page load
only what this server serves, and no way around the key through the page's paths."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from offline_assistants import playground
from offline_assistants.api import create_app
from offline_assistants.engine import Engine

STATIC = Path(playground.__file__).parent / "static"
KEY = "sk-serving-test"


@pytest.fixture
def web(engine: Engine) -> TestClient:
    return TestClient(create_app(engine, api_key=KEY))


def test_the_page_and_its_files_load_without_the_key_and_nothing_else_does(web: TestClient) -> None:
    page = web.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/playground/js/main.js">' in page.text
    assert web.get("/playground/js/main.js").status_code == 200
    assert web.head("/").status_code == 200
    for guarded in ("/v1/models", "/v1/assistants", "/v1/threads", "/openapi.json", "/playground", "/favicon.ico"):
        response = web.get(guarded)
        assert response.status_code == 401, guarded
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert web.post("/", content=b"{}").status_code == 401  # only reading the page is open
    assert web.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.parametrize("path", ["/playground/../v1/models", "/playground/%2e%2e/v1/models",
                                  "/playground/js/../../v1/assistants", "/playground/..%2fv1/models"])
def test_dot_segments_never_reach_the_api_without_the_key(web: TestClient, path: str) -> None:
    response = web.get(path)
    assert response.status_code in (401, 404)
    assert "data" not in response.text


def test_modules_get_javascript_types_and_every_file_a_strict_policy(web: TestClient) -> None:
    types = {"js/main.js": "javascript", "vendor/purify.es.js": "javascript", "vendor/marked.esm.js": "javascript",
             "vendor/highlight/core.min.js": "javascript", "style.css": "text/css"}
    for path, kind in types.items():
        response = web.get(f"/playground/{path}")
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"  # revalidated: an upgrade never mixes modules
    policy = web.get("/").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "http" not in policy


def test_the_page_names_only_its_own_files() -> None:
    """Nothing is fetched from a CDN: the page's own sources name no outside address, and each module it imports
    and each file index.html links is there."""
    sources = [STATIC / "index.html", STATIC / "style.css", *sorted((STATIC / "js").glob("*.js"))]
    for source in sources:
        text = source.read_text()
        assert not re.search(r"https?://|//cdn|@import", text), source.name
    for module in (STATIC / "js").glob("*.js"):
        for target in re.findall(r'^import .*? from "(\.[^"]+)";', module.read_text(), flags=re.M):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports missing {target}"
    for link in re.findall(r'(?:href|src)="/playground/([^"]+)"', (STATIC / "index.html").read_text()):
        assert (STATIC / link).is_file(), link


def test_which_paths_are_public() -> None:
    assert playground.is_public("/") and playground.is_public("/playground/js/main.js")
    for path in ("/v1/models", "/openapi.json", "/_script", "/playground", "/playgroundx/a.js",
                 "/playground/../v1/models", "/playground/js/../../openapi.json", "//v1/models", ""):
        assert not playground.is_public(path), path
