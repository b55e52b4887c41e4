"""Helpers for using offline-assistants from tests and notebooks: an engine on the embedded model, an `openai`
client wired straight onto the app with no port, and a real loopback server in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.launch import build, open_local_model
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.llm.process import ProcessBackend


def load_default_backend(n_ctx: int = 2048, *, cache_dir: Path | None = None) -> ProcessBackend:
    """The embedded model exactly as `offline-assistants serve` runs it: in its own process, repacking chosen by
    `--cpu-repack auto` (the probe's verdict is cached in `cache_dir`, by default the user data dir)."""
    settings = Settings(n_ctx=n_ctx) if cache_dir is None else Settings(n_ctx=n_ctx, data_dir=cache_dir)
    return open_local_model(settings).backend


def make_engine(data_dir: Path, backend: ModelBackend, **settings: Any) -> Engine:
    """An engine on `backend` (which stays the caller's to close), over a database and files in `data_dir`, built as
    `serve` builds it (`settings` are Settings fields)."""
    return build(Settings(data_dir=data_dir, **settings), backend=backend).engine


class _SyncASGITransport:
    """A sync httpx2 transport onto an ASGI app, driven on a private event loop (the SDK's sync client needs one)."""

    def __init__(self, app: Any) -> None:
        import httpx2

        self._httpx = httpx2
        self._inner = httpx2.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asgi-transport", daemon=True)
        self._thread.start()

    def handle_request(self, request: Any) -> Any:
        httpx2 = self._httpx
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx2.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._inner.handle_async_request(inner)
            content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
            return response.status_code, response.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx2.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> _SyncASGITransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_process_client(app: Any, **kwargs: Any) -> Any:
    """An `openai.OpenAI` whose requests go straight into the ASGI app: no port, no network.

    Streams arrive whole (the ASGI transport buffers a response), which is fine for tests and notebooks.
    """
    import httpx2
    import openai

    transport = _SyncASGITransport(app)
    http_client = httpx2.Client(transport=transport, base_url="http://offline-assistants/v1")  # type: ignore[arg-type]
    return openai.OpenAI(api_key=kwargs.pop("api_key", "local"), base_url="http://offline-assistants/v1",
                         http_client=http_client, **kwargs)


def in_process_async_client(app: Any, **kwargs: Any) -> Any:
    import httpx2
    import openai

    http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://offline-assistants/v1")
    return openai.AsyncOpenAI(api_key=kwargs.pop("api_key", "local"), base_url="http://offline-assistants/v1",
                              http_client=http_client, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Run the app under uvicorn in a background thread; yields the base URL (`http://127.0.0.1:PORT/v1`)."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
