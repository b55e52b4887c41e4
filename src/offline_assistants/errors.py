"""The engine's exceptions: each carries its HTTP status and the fields of OpenAI's error envelope as data.

No code ever parses an exception's text to decide what to answer; the API layer renders these as they are.

The hierarchy:

    APIError                 500 server_error: the base, and what any unnamed failure is reported as
    ├── InvalidRequest       400 a malformed request, or one that breaks a rule of the API
    │   ├── Conflict         400 a rule of the run lifecycle broken (the real API says 400, not 409)
    │   └── TooManyTokens    400 max_tokens_per_request: an embeddings request over its tokens in all
    ├── NotFound             404 no object of that kind with that id
    ├── PayloadTooLarge      413 an upload over the size limit
    ├── RateLimited          429 rate_limit_exceeded: the run queue is full
    └── ModelUnavailable     503 the model server a message is counted with cannot be reached (--backend-url)

The errors that only the HTTP layer raises (an unknown route, a wrong method, a bad API key, a 500 of its own)
derive from APIError too, and live with it in `offline_assistants.api.errors`.
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
    status_code = 400
    type = "invalid_request_error"


class Conflict(InvalidRequest):
    pass


class TooManyTokens(InvalidRequest):
    type = "max_tokens_per_request"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="max_tokens_per_request")


class RateLimited(APIError):
    """429 as the real API sends it when too much is asked at once: here, when the run queue is full."""

    status_code = 429
    type = "requests"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="rate_limit_exceeded")


class ModelUnavailable(APIError):
    """503: a remote model server's tokenizer could not count a message, so it was not stored; worth a retry."""

    status_code = 503


class NotFound(APIError):
    """Worded as the real API words it, from the kind of object and the id asked for."""

    status_code = 404
    type = "invalid_request_error"

    def __init__(self, kind: str, id: str, *, param: str | None = None) -> None:
        super().__init__(f"No {kind} found with id '{id}'.", param=param)
        self.kind = kind
        self.id = id


class PayloadTooLarge(APIError):
    status_code = 413
    type = "invalid_request_error"
