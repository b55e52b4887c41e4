"""Fixtures of the reliability tests: real `serve` processes, stopped (and whatever they left running, killed)
when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServeProcess


@pytest.fixture
def serve_process() -> Iterator[Callable[..., ServeProcess]]:
    """A factory: ServeProcess(data_dir, model=..., options=[...], probed=...), not yet started."""
    made: list[ServeProcess] = []

    def factory(data_dir: Path, **kwargs: Any) -> ServeProcess:
        made.append(ServeProcess(data_dir, **kwargs))
        return made[-1]

    yield factory
    for server in made:
        server.stop()


@pytest.fixture
def soak_kills(request: pytest.FixtureRequest) -> int:
    """`--soak N`: how many times the soak kills the server (10 in CI)."""
    return int(request.config.getoption("--soak"))


@pytest.fixture
def soak_seed(request: pytest.FixtureRequest) -> int:
    """`--soak-seed N`: the seed of the soak's kills (which scenario, when); fixed by default so that a failure
    replays, and printed with every failure."""
    return int(request.config.getoption("--soak-seed"))


@pytest.fixture
def load_seconds(request: pytest.FixtureRequest) -> float:
    """`--load-seconds S`: how long the load test's clients keep at it (30 s in CI, counting setup)."""
    return float(request.config.getoption("--load-seconds"))
