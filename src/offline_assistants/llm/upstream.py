"""HTTP to a remote model server (vLLM, llama.cpp's llama-server, llama-cpp-python's server): requests, server-sent
event streams that close when a run is cancelled, and failures said in words that name the server.

Every failure is an `UpstreamError`, a ModelError whose `code` the executor puts on the run's last_error: an
upstream 429 is `rate_limit_exceeded`, anything else `server_error`. Nothing here waits without a bound: connects,
reads and whole non-streaming calls have timeouts, and a stream is read with a per-read timeout.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Generator
from typing import Any

import httpx

from offline_assistants.llm.backend import ModelError

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 120.0  # between two bytes of a reply: a cold long prompt on a busy GPU server can take a while
WATCH_EVERY_S = 0.1  # how often a stream waiting for its first token checks whether its run was cancelled
MAX_ERROR_CHARS = 300
# httpx logs every request at INFO: with --log-level info that would be a line per generated message.
logging.getLogger("httpx").setLevel(logging.WARNING)


class UpstreamError(ModelError):
    """The model server failed a call: unreachable, too slow, refused, or broke off. `status` is its HTTP status
    when it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = "rate_limit_exceeded" if status == 429 else "server_error"


def root_of(base_url: str) -> str:
    """http://gpu-box:8000/v1 -> http://gpu-box:8000: the tokenize and props endpoints live outside /v1."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def said(response: httpx.Response) -> str:
    """What an error reply says, in its own words: OpenAI's error envelope, FastAPI's detail, or the text."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            body = error["message"]
        elif isinstance(error, str):
            body = error
        elif "detail" in body:
            body = body["detail"]
        elif "message" in body:
            body = body["message"]
    text = body if isinstance(body, str) else json.dumps(body)
    text = " ".join(text.split())
    return text[:MAX_ERROR_CHARS] + ("..." if len(text) > MAX_ERROR_CHARS else "")


class Upstream:
    """One model server, by its OpenAI-style base URL (`http://gpu-box:8000/v1`). Thread-safe: httpx's client
    pools connections for every worker thread."""

    def __init__(self, base_url: str, *, api_key: str | None = None, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.root = root_of(self.base_url)
        self.read_timeout_s = read_timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    def url(self, path: str, *, root: bool = False) -> str:
        return (self.root if root else self.base_url) + path

    def close(self) -> None:
        self._client.close()

    # --- plain calls ---
    def get(self, path: str, *, root: bool = False) -> Any:
        return self._call("GET", self.url(path, root=root), None)

    def post(self, path: str, body: dict[str, Any], *, root: bool = False) -> Any:
        return self._call("POST", self.url(path, root=root), body)

    def try_get(self, path: str, *, root: bool = False) -> Any | None:
        """The reply, or None when the server has no such endpoint or refuses it (for feature detection)."""
        try:
            return self.get(path, root=root)
        except UpstreamError as exc:
            if exc.status is None:
                raise
            return None

    def try_post(self, path: str, body: dict[str, Any], *, root: bool = False) -> Any | None:
        try:
            return self.post(path, body, root=root)
        except UpstreamError as exc:
            if exc.status is None:
                raise
            return None

    def _call(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        try:
            response = self._client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise self._transport_error(url, exc) from exc
        self._check(url, response)
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(f"the model server at {url} answered with something that is not JSON: "
                                f"{response.text[:MAX_ERROR_CHARS]!r}", status=response.status_code) from exc

    # --- streams ---
    def stream(self, path: str, body: dict[str, Any], cancelled: Callable[[], bool]
               ) -> Generator[dict[str, Any], None, None]:
        """The JSON events of a server-sent event stream, until `data: [DONE]`. Closing the iterator, or
        `cancelled()` turning True (checked between events and, while none arrives, every WATCH_EVERY_S), closes
        the HTTP response: the server sees its client gone and stops generating."""
        url = self.url(path)
        request = self._client.build_request("POST", url, json=body)
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(url, exc) from exc
        closed = threading.Event()
        watch = threading.Thread(target=_watch, args=(response, cancelled, closed), name="upstream-watch",
                                 daemon=True)
        watch.start()
        try:
            if response.status_code >= 400:
                response.read()
                self._check(url, response)
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # comments (": ping"), event names, blank separators
                data = line[len("data:"):].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError as exc:
                    raise UpstreamError(f"the model server at {url} sent an event that is not JSON: "
                                        f"{data[:MAX_ERROR_CHARS]!r}") from exc
                if isinstance(event, dict) and "error" in event:  # an error inside a 200 stream
                    error = event["error"]
                    message = error.get("message", error) if isinstance(error, dict) else error
                    raise UpstreamError(f"the model server at {url} failed mid-stream: {message}")
                yield event
                if cancelled():
                    return
        except (httpx.HTTPError, OSError) as exc:
            if cancelled():
                return  # the watch shut the socket under the read: that is the cancel, not a failure
            raise self._transport_error(url, exc, midway=True) from exc
        finally:
            closed.set()
            response.close()

    # --- failures, in words ---
    def _check(self, url: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        if status == 429:
            raise UpstreamError(f"the model server at {url} is rate limiting (HTTP 429): {said(response)}",
                                status=status)
        if status >= 500:
            raise UpstreamError(f"the model server at {url} failed (HTTP {status}): {said(response)}", status=status)
        raise UpstreamError(f"the model server at {url} refused the request (HTTP {status}): {said(response)}",
                            status=status)

    def _transport_error(self, url: str, exc: httpx.HTTPError | OSError, *, midway: bool = False) -> UpstreamError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return UpstreamError(f"the model server at {url} is unreachable: {exc or type(exc).__name__}")
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(f"the model server at {url} did not answer within {self.read_timeout_s:g} s")
        what = "broke off the stream" if midway else "dropped the connection"
        return UpstreamError(f"the model server at {url} {what}: {exc or type(exc).__name__}")


def _watch(response: httpx.Response, cancelled: Callable[[], bool], closed: threading.Event) -> None:
    """Close a response whose run was cancelled while the stream waits for the server (a long prompt, a busy
    server): without it the cancel would wait for the next token."""
    while not closed.wait(WATCH_EVERY_S):
        try:
            stop = cancelled()
        except Exception:  # noqa: BLE001 - a failing check must not kill the watch; the reader checks too
            stop = False
        if stop:
            _abort(response)
            return


def _abort(response: httpx.Response) -> None:
    """End a response another thread is reading: shut its socket down, which wakes the blocked read at once
    (closing the response alone waits for that read to return) and tells the server its client is gone."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed
