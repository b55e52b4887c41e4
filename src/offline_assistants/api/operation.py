"""A route that says what it takes and what it returns.

Every public route is an `Operation`: the OpenAPI document (api/openapi.py) is built from these declarations, so
the document cannot drift from the routes: a route without one is a test failure, not a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import Route


@dataclass(frozen=True)
class Doc:
    """What the document says of one operation.

    `body` is the JSON request model; `form` the multipart form's fields (name -> JSON schema) for uploads;
    `query` the query parameters' model; `returns` the type of a 200 reply (a model, or `bytes` for a download).
    `streams`: `stream: true` in the body turns the reply into server-sent events.
    """

    operation_id: str
    summary: str
    returns: Any
    body: type[BaseModel] | None = None
    form: Mapping[str, Mapping[str, Any]] | None = None
    required_form: tuple[str, ...] = ()
    query: type[BaseModel] | None = None
    extra_query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    streams: bool = False


class Operation(Route):
    def __init__(self, method: str, path: str, endpoint: Callable[..., Any], doc: Doc) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method = method
        self.doc = doc
