"""The ASGI app: every resource's routes, the error handlers, and the middleware around them."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from offline_assistants import playground
from offline_assistants.api import (
    assistants,
    chat,
    containers,
    conversations,
    embeddings,
    files,
    messages,
    models,
    openapi,
    response_socket,
    responses,
    runs,
    script,
    threads,
    uploads,
    vector_stores,
)
from offline_assistants.api.auth import APIKeyMiddleware
from offline_assistants.api.errors import HANDLERS, CatchAll
from offline_assistants.api.response_recording import Recordings
from offline_assistants.engine import Engine

# Starlette takes the first route that matches: runs' /v1/threads/runs must come before threads'
# /v1/threads/{thread_id}.
ROUTES: list[BaseRoute] = [*models.routes, *assistants.routes, *runs.routes, *threads.routes, *messages.routes,
                           *files.routes, *vector_stores.routes,
                           *uploads.routes, *responses.routes, *response_socket.routes, *conversations.routes,
                           *containers.routes, *chat.routes, *embeddings.routes]


def create_app(engine: Engine, *, api_key: str | None = None) -> Starlette:
    """The ASGI app over an engine. The caller owns the engine's lifetime (start-up loads a model)."""
    from offline_assistants.script import ScriptedModel

    scripted = isinstance(engine.backend, ScriptedModel)  # only a scripted model has a script to control
    key = engine.settings.api_key if api_key is None else api_key
    own = [*openapi.routes, *script.routes] if scripted else openapi.routes
    app = Starlette(
        # The playground's page at / and its files under /playground/: outside /v1, the only paths open without
        # the key (it asks for the key, then makes the same /v1 requests as any client).
        routes=[*own, *ROUTES, *playground.routes],
        middleware=[Middleware(CatchAll), Middleware(APIKeyMiddleware, api_key=key, public=playground.is_public)],
        exception_handlers=HANDLERS,
    )
    # Endpoints find the engine here (api/endpoint.py), so one set of routes serves every app.
    app.state.engine = engine
    app.state.api_key = key
    app.state.recordings = Recordings()  # the live streams of background responses (api/response_recording.py)
    return app
