"""The HTTP face of the engine (starlette). It only translates.

One module of routes per resource (models, assistants, threads, messages, runs, files), each endpoint a plain
async function over `endpoint.py`'s helpers; `sse.py` streams runs, `response_recording.py` records a response's
stream once for all its readers (`response_stream.py` translates it, `response_socket.py` is the WebSocket mode of
/v1/responses), `errors.py` renders every error, `auth.py` checks the API key, and `app.py` puts them together.
"""

from __future__ import annotations

from offline_assistants.api.app import create_app

__all__ = ["create_app"]
