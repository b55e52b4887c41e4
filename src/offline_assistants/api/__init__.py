"""The HTTP face of the engine (starlette): routes, SSE, auth and the error envelope. It only translates."""

from __future__ import annotations

from offline_assistants.api.app import create_app

__all__ = ["create_app"]
