"""The playground: a web page over the public API, served at `/` by the same server; its files under
`/playground/`. Nothing here talks to the engine: the page makes the same /v1 requests any client makes, with the
API key the user types in (kept in the browser), so the page's own files are the only thing served without one.

The page is plain ES modules (static/js/), with its libraries vendored from npm unchanged (static/vendor/, see
vendor.py): no build step, no CDN, nothing fetched from outside the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
PREFIX = "/playground"

# The page may load only what this server serves, run no inline script, and be framed by no one; images may also
# be blob: URLs (files fetched with the key) and data: URLs (the favicon).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
           "cache-control": "no-cache"}


def is_public(path: str) -> bool:
    """The page and its files load without the API key (the page then asks for it); nothing else does."""
    if path == "/":
        return True
    return path.startswith(PREFIX + "/") and ".." not in path.split("/")


class _Assets(StaticFiles):
    """The page's files, revalidated on every load (`no-cache` with their ETag), so an upgraded server's page is
    never mixed with a cached older module."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(HEADERS)
        return response


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


routes: list[BaseRoute] = [
    Route("/", index, methods=["GET", "HEAD"]),
    Mount(PREFIX, app=_Assets(directory=STATIC), name="playground"),
]
