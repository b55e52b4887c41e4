from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from offline_assistants.api.auth import APIKeyMiddleware
from offline_assistants.api.errors import HANDLERS, CatchAll
from offline_assistants.api.routes import routes
from offline_assistants.engine import Engine


def create_app(engine: Engine, *, api_key: str | None = None) -> Starlette:
    """The ASGI app over an engine. The caller owns the engine's lifetime (start-up loads a model)."""
    app = Starlette(
        routes=routes(engine),
        middleware=[Middleware(CatchAll), Middleware(APIKeyMiddleware, api_key=api_key if api_key is not None else engine.settings.api_key)],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
    )
    app.state.engine = engine
    return app
