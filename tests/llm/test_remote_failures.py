"""How the remote backend fails: every way an upstream can go wrong ends in an UpstreamError that names the
upstream and what it said, within a bounded time; start-up refuses a server it cannot keep the guarantees on.

The upstreams here are small HTTP apps that answer with a status, stall, or break a stream: failures that a real
model server shows only by accident. Nothing here pretends to generate."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from upstream_servers import gguf

from offline_assistants.llm.backend import AnyJson, Choice, CodeBlock, JsonSchema, ModelError, Sampling
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.remote import CODE_REGEX, RemoteBackend, constraint_body
from offline_assistants.llm.remote_loading import connect
from offline_assistants.llm.remote_probe import ServerInfo
from offline_assistants.llm.upstream import Upstream, UpstreamError, root_of
from offline_assistants.testing import free_port, serve

MODELS = {"object": "list", "data": [{"id": "m", "object": "model"}]}


def _event(data: dict[str, Any]) -> bytes:
    import json

    return f"data: {json.dumps(data)}\n\n".encode()


async def _broken_stream() -> AsyncIterator[bytes]:
    yield _event({"choices": [{"text": "Hel", "index": 0, "finish_reason": None}]})
    await asyncio.sleep(0.05)
    raise RuntimeError("the GPU fell off the bus")


async def _unfinished_stream() -> AsyncIterator[bytes]:
    yield _event({"choices": [{"text": "Hel", "index": 0, "finish_reason": None}]})
    yield b"data: [DONE]\n\n"


async def _stalled_stream() -> AsyncIterator[bytes]:
    await asyncio.sleep(10)  # a long prompt on a busy server: no first token for a while
    yield _event({"choices": [{"text": "late", "index": 0, "finish_reason": None}]})


async def completions(request: Request) -> Response:
    mode = request.app.state.mode
    if mode == "stalled":
        return StreamingResponse(_stalled_stream(), media_type="text/event-stream")
    if mode == "429":
        return JSONResponse({"error": {"message": "too many requests, slow down", "type": "rate_limit"}}, 429)
    if mode == "503":
        return JSONResponse({"error": {"message": "CUDA out of memory", "type": "server_error"}}, 503)
    if mode == "slow":
        await asyncio.sleep(3)
        return JSONResponse({})
    if mode == "broken":
        return StreamingResponse(_broken_stream(), media_type="text/event-stream")
    return StreamingResponse(_unfinished_stream(), media_type="text/event-stream")


def _app(mode: str, *, props: bool = False) -> Starlette:
    async def models(_request: Request) -> Response:
        return JSONResponse(MODELS)

    async def get_props(_request: Request) -> Response:
        return JSONResponse({"default_generation_settings": {"n_ctx": 2048}, "chat_template": ""})

    routes = [Route("/v1/models", models), Route("/v1/completions", completions, methods=["POST"])]
    if props:
        routes.append(Route("/props", get_props))
    app = Starlette(routes=routes)
    app.state.mode = mode
    return app


@pytest.fixture
def upstream_app(stopping_servers: list[threading.Thread]) -> Iterator[Any]:
    servers: list[Any] = []

    def start(mode: str, **options: Any) -> str:
        ctx = serve(_app(mode, **options))
        servers.append(ctx)
        url: str = ctx.__enter__()
        return url

    yield start
    for ctx in servers:  # a stalled request keeps its server stopping for seconds: the test does not wait for it
        thread = threading.Thread(target=ctx.__exit__, args=(None, None, None), name="uvicorn-stop", daemon=True)
        thread.start()
        stopping_servers.append(thread)


@pytest.fixture(scope="module")
def tokenizer() -> LlamaTokenizer:
    return LlamaTokenizer(gguf())  # the vocabulary only: no weights are read


@pytest.fixture
def backend_on(tokenizer: LlamaTokenizer) -> Iterator[Callable[..., RemoteBackend]]:
    """A factory: the remote backend on the upstream at a URL; each is closed (its connections with it) at
    teardown."""
    made: list[RemoteBackend] = []

    def factory(url: str, **upstream: Any) -> RemoteBackend:
        info = ServerInfo(kind="llama-server", model="m", n_ctx=2048, token_prompts=True, constraints="gbnf",
                          scoring="forced")
        made.append(RemoteBackend(Upstream(url, **upstream), info, tokenizer, n_ctx=2048))
        return made[-1]

    yield factory
    for backend in made:
        backend.close()


def _run(backend: RemoteBackend) -> list[Any]:
    return list(backend.generate([1, 2, 3], Sampling(max_tokens=8)))


def test_an_unreachable_server_is_named_at_start_up() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    with pytest.raises(ModelError, match=f"the model server at {root_of(url)}/props is unreachable"):
        connect(url)
    assert time.monotonic() - started < 10


def test_a_429_is_rate_limit_exceeded_with_the_upstreams_words(upstream_app: Any,
                                                               backend_on: Callable[..., RemoteBackend]) -> None:
    url = upstream_app("429")
    with pytest.raises(UpstreamError) as caught:
        _run(backend_on(url))
    assert caught.value.code == "rate_limit_exceeded" and caught.value.status == 429
    assert f"{url}/completions" in str(caught.value) and "too many requests, slow down" in str(caught.value)


def test_a_5xx_is_a_server_error_with_the_upstreams_words(upstream_app: Any,
                                                          backend_on: Callable[..., RemoteBackend]) -> None:
    url = upstream_app("503")
    with pytest.raises(UpstreamError, match=r"failed \(HTTP 503\): CUDA out of memory") as caught:
        _run(backend_on(url))
    assert caught.value.code == "server_error"


def test_a_server_that_stalls_times_out(upstream_app: Any, backend_on: Callable[..., RemoteBackend]) -> None:
    url = upstream_app("slow")
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="did not answer within 0.5 s"):
        _run(backend_on(url, read_timeout_s=0.5))
    assert time.monotonic() - started < 2.5


def test_a_stream_that_breaks_off_fails_with_the_text_so_far_streamed(upstream_app: Any,
                                                                    backend_on: Callable[..., RemoteBackend]) -> None:
    url = upstream_app("broken")
    seen: list[Any] = []
    with pytest.raises(UpstreamError, match="broke off the stream"):
        for item in backend_on(url).generate([1, 2, 3], Sampling(max_tokens=8)):
            seen.append(item)
    assert [getattr(i, "text", None) for i in seen] == ["Hel"]


def test_a_stream_that_ends_without_a_finish_reason_is_a_failure(upstream_app: Any,
                                                                 backend_on: Callable[..., RemoteBackend]) -> None:
    url = upstream_app("unfinished")
    with pytest.raises(UpstreamError, match="without a finish reason.*--interrupt_requests False"):
        _run(backend_on(url))


def test_a_cancel_before_the_first_token_closes_the_request_at_once(upstream_app: Any,
                                                                    backend_on: Callable[..., RemoteBackend]) -> None:
    url = upstream_app("stalled")
    asked = time.monotonic()
    started = time.monotonic()
    items = list(backend_on(url).generate([1, 2, 3], Sampling(max_tokens=8),
                                                   cancelled=lambda: time.monotonic() - asked > 0.3))
    assert [type(i).__name__ for i in items] == ["Finish"] and items[0].reason == "cancelled"
    assert time.monotonic() - started < 2.0  # not the 10 s the server would take to say anything


def test_no_tokenizer_anywhere_refuses_to_start_and_says_which_option(upstream_app: Any) -> None:
    url = upstream_app("503", props=True)  # llama-server by its /props, but its /tokenize is gone
    with pytest.raises(ModelError, match="no working tokenize endpoint.*give --tokenizer PATH"):
        connect(url)


def test_a_server_of_unknown_kind_is_refused(upstream_app: Any) -> None:
    url = upstream_app("503")
    with pytest.raises(ModelError, match="is none of llama-server, vllm, llama-cpp-python"):
        connect(url)


def test_constraints_become_vllms_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert constraint_body("vllm-structured", Choice(("a", "b"))) == {"structured_outputs": {"choice": ["a", "b"]}}
    assert constraint_body("vllm-structured", JsonSchema(schema)) == {"structured_outputs": {"json": schema}}
    assert constraint_body("vllm-structured", JsonSchema(None)) == {"structured_outputs": {"json_object": True}}
    assert constraint_body("vllm-structured", AnyJson()) == {"structured_outputs": {"json_object": True}}
    assert constraint_body("vllm-structured", CodeBlock()) == {"structured_outputs": {"regex": CODE_REGEX}}
    assert constraint_body("vllm-guided", JsonSchema(schema)) == {"guided_json": schema}
    assert constraint_body("vllm-guided", AnyJson()) == {"guided_json": {"type": "object"}}
    assert constraint_body("gbnf", Choice(("a", "b"))) == {"grammar": 'root ::= "a" | "b"'}


def test_the_code_regex_accepts_what_the_code_grammar_does() -> None:
    import re

    pattern = re.compile(CODE_REGEX)
    assert pattern.fullmatch("print(1)\nx = 2\n```") and pattern.fullmatch("\n```")
    assert not pattern.fullmatch("print(`x`)\n```") and not pattern.fullmatch("print(1)")
