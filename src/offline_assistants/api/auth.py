"""Optional API key: with one configured, every request (and WebSocket handshake) needs `Authorization: Bearer
<key>`, except those that `public` lets through (the playground's own page and files: it asks for the key, then
sends it like any client)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketClose

from offline_assistants.api.errors import Unauthorized, render


class APIKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str | None,
                 public: Callable[[str], bool] = lambda path: False) -> None:
        self.app = app
        self.api_key = api_key
        self.public = public  # paths that GET and HEAD may read without the key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.api_key or (
                scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and self.public(scope["path"])):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        token = given[7:].strip() if given[:7].lower() == "bearer " else ""
        if token and hmac.compare_digest(token.encode(), self.api_key.encode()):
            await self.app(scope, receive, send)
            return
        if not token:
            err = Unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using "
                "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            shown = token[:3] + "*" * 4 + token[-4:] if len(token) > 8 else "*" * len(token)
            err = Unauthorized(f"Incorrect API key provided: {shown}.")
        if scope["type"] == "http":
            await render(err)(scope, receive, send)
        elif "websocket.http.response" in scope.get("extensions", {}):  # the handshake answered as HTTP would
            await WebSocket(scope, receive, send).send_denial_response(render(err))
        else:
            await WebSocketClose(code=1008, reason=err.message[:120])(scope, receive, send)
