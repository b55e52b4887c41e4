"""Shared fixtures; every test gets its own database.

Two families, by name: `engine`, `client`, `inproc_client` and `any_client` are on a scripted model (fast, no model
load; for API shape and CRUD tests), `real_engine`, `real_client` and `real_inproc_client` are on the real model,
loaded once per session (`real_backend`) and shared.

What a test costs is marked by the hook below, from the fixtures it uses (directly or through other fixtures) and
the file it lives in, so nobody marks by hand: `model` (real weights), `kernel` (a Jupyter kernel: ask for
`kernel_runner`), `serve` (a server process: `serve_command`, `serve_process`), `browser` (Chromium), `fuzz`
(schemathesis), `soak` (tests/reliability). Each of them also marks the test `slow`, so

    python -m pytest -m "not slow"

is the edit loop (under a minute on two cores), and `python -m pytest` runs everything. The few tests that start
a kernel or load the model where no fixture of ours shows it carry the mark by hand, with why; so do the two
pagination sweeps, marked `slow` for their volume alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest

from offline_assistants.api import create_app
from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.testing import in_process_client, load_default_backend, serve
from offline_assistants.tools import registry

if TYPE_CHECKING:
    from offline_assistants.tools.code_interpreter import JupyterCodeRunner

SOAK_SEED = 2212  # the kill -9 soak's default seed: fixed, so that a failure in CI replays as it was

# What makes a test slow, told by a fixture it uses (directly or through other fixtures) ...
COST_OF_FIXTURE = {
    "real_backend": "model", "qwen_backend": "model", "llama_cpp_upstream": "model", "start_upstream": "model",
    "kernel_runner": "kernel", "doctor": "kernel",  # tests/test_doctor.py: its kernel check starts one
    "serve_command": "serve", "serve_process": "serve",
    "browser": "browser",
}
# ... or by where it lives (paths relative to the repository).
COST_OF_PATH = {"tests/api/test_fuzz.py": "fuzz", "tests/reliability": "soak"}
COSTS = {*COST_OF_FIXTURE.values(), *COST_OF_PATH.values()}  # each also marks the test `slow`


def pytest_addoption(parser: pytest.Parser) -> None:
    # tests/reliability: the defaults are the CI bounds; longer runs outside CI (README, Reliability).
    parser.addoption("--soak", type=int, default=10, help="kill -9 soak: how many times to kill the server")
    parser.addoption("--soak-seed", type=int, default=SOAK_SEED,
                     help=f"kill -9 soak: the seed of its kill order and timing (default {SOAK_SEED}, fixed)")
    parser.addoption("--load-seconds", type=float, default=30.0, help="load test: seconds of 100-client traffic")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Fixtures looked up at run time (as any_client does) are not seen here: those must be cheap ones.
    for item in items:
        used = item.fixturenames if isinstance(item, pytest.Function) else []
        costs = {COST_OF_FIXTURE[name] for name in used if name in COST_OF_FIXTURE}
        costs |= {cost for path, cost in COST_OF_PATH.items() if item.path.is_relative_to(config.rootpath / path)}
        for cost in sorted(costs - {mark.name for mark in item.iter_markers()}):
            item.add_marker(cost)
        if any(item.get_closest_marker(cost) for cost in COSTS) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def real_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelBackend]:
    """The embedded SmolLM2-135M in its model process, as `serve` runs it (--cpu-repack auto, probe included),
    with a small window: enough for short prompts, fast on two cores."""
    backend = load_default_backend(n_ctx=2048, cache_dir=tmp_path_factory.mktemp("model-cache"))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def qwen_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelBackend]:
    """Qwen2.5-Coder-0.5B-Instruct, a model with a tool-call syntax of its own (Hermes), from the six parts the
    test extra installs, assembled into the user's data dir once (checked by sha256) and run as `serve` runs it."""
    from offline_assistants.launch import open_local_model
    from offline_assistants.llm import packed

    model = packed.named("qwen2.5-coder-0.5b")
    assert model is not None
    if not packed.installed(model):  # installed: anything wrong with its parts fails the tests that use it
        pytest.skip('Qwen2.5-Coder-0.5B is not installed: pip install -e ".[test]" installs it')
    backend = open_local_model(Settings(model=model.name, n_ctx=2048)).backend
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


@pytest.fixture(scope="module")
def kernel_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., JupyterCodeRunner]]:
    """A factory of the code interpreter's runners: `kernel_runner(root, **options)` (root: a fresh folder when
    None). Kernels start on first use; each runner is closed when the module's tests are done, if its test has not
    closed it already. Module-scoped, so that a module's shared runner can be made with it."""
    from offline_assistants.tools.code_interpreter import JupyterCodeRunner

    made: list[JupyterCodeRunner] = []

    def factory(root: Path | None = None, **options: Any) -> JupyterCodeRunner:
        made.append(JupyterCodeRunner(root or tmp_path_factory.mktemp("kernels"), **options))
        return made[-1]

    yield factory
    for runner in made:
        runner.close()


@pytest.fixture
def serve_command() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """A factory: `offline-assistants serve ARGS...` as a real process (`python -m offline_assistants`) in a
    session of its own, its stderr (the banner) piped. The test stops it as it means to; one still running at
    teardown (the test failed first) is killed with its children."""
    started: list[subprocess.Popen[str]] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "offline_assistants", "serve", *args]
        started.append(subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True))
        return started[-1]

    yield factory
    for server in started:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        with server:  # closes the pipe, waits
            pass


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """A factory: Engine over a fresh database in tmp_path, on the given backend (default: scripted)."""
    engines: list[Engine] = []

    def factory(backend: ModelBackend | None = None, *, code_runner: Any = None,
                tool_registry: Any = registry.REGISTRY, **settings: Any) -> Engine:
        data = tmp_path / f"data{len(engines)}"
        engine = Engine(Settings(data_dir=data, **settings), backend or CannedBackend(), code_runner=code_runner,
                        tool_registry=tool_registry)
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


# The scripted engine of the CRUD tests has no replies to give: a run on it fails with this, so a test that needs
# model text and asked for `engine`/`client` by mistake fails loudly instead of passing on canned text.
NO_MODEL = ("this engine is scripted for CRUD tests: ask for real_engine/real_client, "
            "or make_engine(CannedBackend([...]))")


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    """An engine on a scripted model that refuses to generate: for tests of storage and API shape."""
    return make_engine(CannedBackend(fail_with=NO_MODEL))


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
        # Plain HTTP on loopback: no certificate store to load (30 ms for each client made with the default).
        kwargs.setdefault("http_client", openai.DefaultHttpxClient(verify=False))
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
