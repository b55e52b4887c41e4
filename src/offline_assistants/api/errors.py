"""The one place where exceptions become OpenAI's error envelope."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from offline_assistants.errors import APIError, MethodNotAllowed, RouteNotFound, ServerError

log = logging.getLogger(__name__)


def render(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.envelope(), status_code=exc.status_code)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return render(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return render(RouteNotFound(request.method, request.url.path))
    if exc.status_code == 405:
        return render(MethodNotAllowed(request.method, request.url.path))
    err = APIError(str(exc.detail))
    err.status_code = exc.status_code
    err.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return render(err)


def server_error(request: Request, exc: BaseException) -> ServerError:
    """A bug, never bad input: log it with its traceback; the client gets the envelope and no internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return ServerError("The server had an error while processing your request.")


async def unexpected(request: Request, exc: Exception) -> Response:
    # Starlette calls this from its outermost middleware, which re-raises afterwards: uvicorn then closes the
    # connection. Routes turn their own surprises into a ServerError first (see routes.sync), so this is the
    # last resort, for errors outside a route.
    return render(server_error(request, exc))


HANDLERS = {APIError: api_error, HTTPException: http_error, Exception: unexpected}
