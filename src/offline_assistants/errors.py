"""Exceptions that carry data; the API layer renders them as OpenAI's error envelope.

Each exception knows its HTTP status and the fields of the envelope, so no code ever needs to parse an
exception's text to decide what to answer.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    status_code: int = 500
    type: str = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(APIError):
    """400: the request is malformed or breaks a rule of the API."""

    status_code = 400
    type = "invalid_request_error"


class NotFound(APIError):
    """404 for a missing object, worded as the real API words it."""

    status_code = 404
    type = "invalid_request_error"

    def __init__(self, kind: str, id: str, *, param: str | None = None) -> None:
        super().__init__(f"No {kind} found with id '{id}'.", param=param)
        self.kind = kind
        self.id = id


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


class Conflict(InvalidRequest):
    """A state rule of the run lifecycle was broken (the real API answers these with 400)."""


class PayloadTooLarge(APIError):
    status_code = 413
    type = "invalid_request_error"


class ServerError(APIError):
    status_code = 500
    type = "server_error"
