"""Shared fixtures; every test gets its own database.

Two families, by name: `engine`, `client`, `inproc_client` and `any_client` are on a scripted model (fast, no model
load; for API shape and CRUD tests), `real_engine`, `real_client` and `real_inproc_client` are on the real model,
loaded once per session (`real_backend`) and shared. A test that reaches the real model through any fixture is
marked `model` by the hook below, so `python -m pytest -q -m "not model"` is the fast subset."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from offline_assistants.api import create_app
from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.llm.scripted import ScriptedBackend
from offline_assistants.testing import in_process_client, load_default_backend, serve

warnings.filterwarnings("ignore", category=DeprecationWarning)


def pytest_addoption(parser: pytest.Parser) -> None:
    # tests/reliability: the defaults are the CI bounds; longer runs outside CI (README, Reliability).
    parser.addoption("--soak", type=int, default=10, help="kill -9 soak: how many times to kill the server")
    parser.addoption("--load-seconds", type=float, default=30.0, help="load test: seconds of 100-client traffic")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marked by what a test uses: any test that reaches the real model, directly or through a fixture. (Fixtures
    # looked up at run time, as any_client does, are not seen here: those must be scripted ones. The few tests that
    # load a model of their own carry the mark by hand.)
    for item in items:
        if {"real_backend", "llama_cpp_upstream", "start_upstream"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def real_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelBackend]:
    """The embedded SmolLM2-135M in its model process, as `serve` runs it (--cpu-repack auto, probe included),
    with a small window: enough for short prompts, fast on two cores."""
    backend = load_default_backend(n_ctx=2048, cache_dir=tmp_path_factory.mktemp("model-cache"))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_cpp_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """llama-cpp-python's own OpenAI-compatible server on the embedded model (tests/upstream_servers.py), once per
    session: the upstream of the remote backend's tests (`upstream.url` is its .../v1)."""
    from upstream_servers import start_llama_cpp_python

    upstream = start_llama_cpp_python(tmp_path_factory.mktemp("upstream"))
    yield upstream
    upstream.stop()


@pytest.fixture
def start_upstream(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A factory of private llama-cpp-python servers, for tests that kill theirs."""
    from upstream_servers import start_llama_cpp_python

    started: list[Any] = []

    def factory(**options: Any) -> Any:
        started.append(start_llama_cpp_python(tmp_path, **options))
        return started[-1]

    yield factory
    for upstream in started:
        upstream.stop()


class Recording:
    """The real backend, recording every prompt and sampling it is given and the tokens it evaluated."""

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner
        self.prompts: list[list[int]] = []
        self.samplings: list[Any] = []
        self.evaluated: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, prompt: list[int], sampling: Any, **kw: Any) -> Iterator[Any]:
        self.prompts.append(list(prompt))
        self.samplings.append(sampling)
        for item in self.inner.generate(prompt, sampling, **kw):
            if type(item).__name__ == "Finish":
                self.evaluated.append(item.prompt_tokens)
            yield item


@pytest.fixture
def recording(real_backend: ModelBackend) -> Recording:
    return Recording(real_backend)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """A factory: Engine over a fresh database in tmp_path, on the given backend (default: scripted)."""
    engines: list[Engine] = []

    def factory(backend: ModelBackend | None = None, *, code_runner: Any = None, **settings: Any) -> Engine:
        data = tmp_path / f"data{len(engines)}"
        engine = Engine(Settings(data_dir=data, **settings), backend or ScriptedBackend(), code_runner=code_runner)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


# The scripted engine of the CRUD tests has no replies to give: a run on it fails with this, so a test that needs
# model text and asked for `engine`/`client` by mistake fails loudly instead of passing on canned text.
NO_MODEL = ("this engine is scripted for CRUD tests: ask for real_engine/real_client, "
            "or make_engine(ScriptedBackend([...]))")


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    """An engine on a scripted model that refuses to generate: for tests of storage and API shape."""
    return make_engine(ScriptedBackend(fail_with=NO_MODEL))


@pytest.fixture
def real_engine(make_engine: Callable[..., Engine], real_backend: ModelBackend) -> Engine:
    return make_engine(real_backend)


@pytest.fixture(scope="session")
def stopping_servers() -> Iterator[list[threading.Thread]]:
    """Test servers still stopping: uvicorn takes 0.2 s to stop (a 0.1 s tick, then a 0.1 s grace sleep), so a
    test does not wait for its own; all are joined when the session ends."""
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(10)


@pytest.fixture
def make_client(stopping_servers: list[threading.Thread]) -> Iterator[Callable[..., openai.OpenAI]]:
    """A factory: the official SDK against a real uvicorn server on a random loopback port."""
    servers: list[Any] = []
    clients: list[openai.OpenAI] = []

    def factory(engine: Engine, *, api_key: str = "sk-local", server_api_key: str | None = None,
                **kwargs: Any) -> openai.OpenAI:
        ctx = serve(create_app(engine, api_key=server_api_key))
        url = ctx.__enter__()
        servers.append(ctx)
        clients.append(openai.OpenAI(base_url=url, api_key=api_key, max_retries=0, _strict_response_validation=True,
                                     **kwargs))
        return clients[-1]

    yield factory
    for client in clients:  # its keep-alive connections closed first, so the server stops without waiting on them
        client.close()
    for ctx in servers:  # no request is left in flight: each server stops on its own time
        thread = threading.Thread(target=ctx.__exit__, args=(None, None, None), name="uvicorn-stop", daemon=True)
        thread.start()
        stopping_servers.append(thread)


def inproc(engine: Engine) -> openai.OpenAI:
    """The official SDK straight onto the app, no port."""
    client: openai.OpenAI = in_process_client(create_app(engine), max_retries=0, _strict_response_validation=True)
    return client


@pytest.fixture
def client(engine: Engine, make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    """SDK over loopback HTTP onto the scripted `engine`."""
    return make_client(engine)


@pytest.fixture
def inproc_client(engine: Engine) -> openai.OpenAI:
    """SDK over the in-process ASGI transport onto the scripted `engine`."""
    return inproc(engine)


@pytest.fixture(params=["http", "inproc"])
def any_client(request: pytest.FixtureRequest) -> openai.OpenAI:
    """The same test over a real loopback server and over the in-process ASGI transport, onto `engine`."""
    fixture = "client" if request.param == "http" else "inproc_client"
    sdk: openai.OpenAI = request.getfixturevalue(fixture)
    return sdk


@pytest.fixture
def real_client(real_engine: Engine, make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    """SDK over loopback HTTP onto an engine with the real model."""
    return make_client(real_engine)


@pytest.fixture
def real_inproc_client(real_engine: Engine) -> openai.OpenAI:
    return inproc(real_engine)
