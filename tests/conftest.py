"""Shared fixtures. One real model is loaded once per session and shared; every test gets its own database."""

from __future__ import annotations

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marked by what a test uses, not by hand: any test that reaches the real model, directly or through a fixture.
    for item in items:
        if "real_backend" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def real_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelBackend]:
    """The embedded SmolLM2-135M in its model process, as `serve` runs it (--cpu-repack auto, probe included),
    with a small window: enough for short prompts, fast on two cores."""
    backend = load_default_backend(n_ctx=2048, cache_dir=tmp_path_factory.mktemp("model-cache"))
    yield backend
    backend.close()


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


@pytest.fixture
def engine(make_engine: Callable[..., Engine], real_backend: ModelBackend) -> Engine:
    return make_engine(real_backend)


@pytest.fixture
def make_client() -> Iterator[Callable[..., openai.OpenAI]]:
    """A factory: the official SDK against a real uvicorn server on a random loopback port."""
    servers: list[Any] = []

    def factory(engine: Engine, *, api_key: str = "sk-local", server_api_key: str | None = None,
                **kwargs: Any) -> openai.OpenAI:
        ctx = serve(create_app(engine, api_key=server_api_key))
        url = ctx.__enter__()
        servers.append(ctx)
        return openai.OpenAI(base_url=url, api_key=api_key, max_retries=0, _strict_response_validation=True,
                             **kwargs)

    yield factory
    for ctx in servers:
        ctx.__exit__(None, None, None)


@pytest.fixture
def client(engine: Engine, make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    """SDK over loopback HTTP onto an engine with the real model."""
    return make_client(engine)


@pytest.fixture
def scripted_client(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    """SDK over loopback HTTP onto an engine with a scripted model: for API shape tests that need no real text."""
    return make_client(make_engine())


@pytest.fixture
def inproc_client(engine: Engine) -> openai.OpenAI:
    return in_process_client(create_app(engine), max_retries=0, _strict_response_validation=True)
