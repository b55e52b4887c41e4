"""The one place where exceptions become OpenAI's error envelope."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class CatchAll:
    """Answer any unexpected exception with the envelope, without re-raising it.

    Starlette's outermost handler for `Exception` renders a response but then re-raises, so the server logs the
    error twice and drops the connection; clients then see a reset instead of a 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # mid-stream: nothing more can be said; the connection ends
            response = render(ServerError("The server had an error while processing your request."))
            await response(scope, receive, send)


# Anything else is answered by CatchAll (app.py), which, unlike Starlette's last resort, does not re-raise.
HANDLERS = {APIError: api_error, HTTPException: http_error}
