"""The pytest plugin for testing apps against offline-assistants (registered as a `pytest11` entry point, so
installing the package makes it available).

Fixtures, each test with its own temporary database and files:

  assistants_script   the Script of this test (offline_assistants/script.py): what the model will do
  assistants_engine   an Engine on the scripted model (or the real default model, see the marker below)
  assistants_client   an `openai.OpenAI` wired in process onto it: no port
  assistants_server   a live loopback server on it: its base URL, for apps that build their own client

`@pytest.mark.assistants_model("default")` runs a test on the real embedded model instead (loaded once per
session). At teardown, a script that still holds steps fails the test, saying what was left: a test that scripted
a call the app never reached is a test that passed for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.script import Script, ScriptedModel

MARKER = "assistants_model"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f'{MARKER}(name): run on a real model ("default": the embedded one)')


@pytest.fixture(scope="session")
def _assistants_default_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from offline_assistants.testing import load_default_backend

    backend = load_default_backend(n_ctx=2048, cache_dir=tmp_path_factory.mktemp("assistants-model"))
    yield backend
    backend.close()


@pytest.fixture
def assistants_script() -> Script:
    return Script()


@pytest.fixture
def assistants_engine(request: pytest.FixtureRequest, tmp_path: Path, assistants_script: Script) -> Iterator[Engine]:
    from offline_assistants.launch import build

    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        name = marker.args[0] if marker.args else "default"
        if name != "default":
            raise pytest.UsageError(f'{MARKER}: only "default" (the embedded model) is known, not {name!r}')
        backend: ModelBackend = request.getfixturevalue("_assistants_default_model")
    else:
        backend = ScriptedModel(assistants_script)
    server = build(Settings(data_dir=tmp_path / "offline-assistants"), backend=backend)
    yield server.engine
    server.close()
    left = assistants_script.remaining()
    if left and marker is None:
        pytest.fail("the script still holds steps the app never reached: "
                    + "; ".join(step.describe() for step in left), pytrace=False)


@pytest.fixture
def assistants_client(assistants_engine: Engine) -> Any:
    from offline_assistants.api import create_app
    from offline_assistants.testing import in_process_client

    return in_process_client(create_app(assistants_engine), max_retries=0)


@pytest.fixture
def assistants_server(assistants_engine: Engine) -> Iterator[str]:
    from offline_assistants.api import create_app
    from offline_assistants.testing import serve

    with serve(create_app(assistants_engine)) as url:
        yield url
