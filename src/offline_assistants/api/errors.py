"""The errors only the HTTP layer raises, and the one place where any exception becomes OpenAI's error envelope.

They extend the engine's hierarchy (drawn in `offline_assistants.errors`):

    APIError
    ├── RouteNotFound        404 no route has this path
    ├── MethodNotAllowed     405 a route has this path, but not for this method
    ├── Unauthorized         401 a missing or wrong API key
    ├── HTTPStatusError      any other status Starlette raises itself, with its own wording
    └── ServerError          500 a failure of the server, not of the request
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from offline_assistants.errors import APIError

log = logging.getLogger(__name__)


class RouteNotFound(APIError):
    status_code = 404
    type = "invalid_request_error"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Invalid URL ({method} {path})")


class MethodNotAllowed(APIError):
    status_code = 405
    type = "invalid_request_error"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"Invalid method for URL ({method} {path})")


class Unauthorized(APIError):
    status_code = 401
    type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_api_key")


class HTTPStatusError(APIError):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = "invalid_request_error" if status_code < 500 else "server_error"


class ServerError(APIError):
    status_code = 500
    type = "server_error"


def render(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.envelope(), status_code=exc.status_code)


def _as_api_error(request: Request, exc: Exception) -> APIError:
    if isinstance(exc, HTTPException):
        # Starlette words its 404 and 405 for people; clients of the real API see these words instead.
        if exc.status_code == 404:
            return RouteNotFound(request.method, request.url.path)
        if exc.status_code == 405:
            return MethodNotAllowed(request.method, request.url.path)
        return HTTPStatusError(exc.status_code, str(exc.detail))
    assert isinstance(exc, APIError)  # HANDLERS registers `handle` for nothing else
    return exc


async def handle(request: Request, exc: Exception) -> Response:
    return render(_as_api_error(request, exc))


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
HANDLERS: dict[type[Exception], ExceptionHandler] = {APIError: handle, HTTPException: handle}
