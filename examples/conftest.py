"""The examples' own tests run whole example apps on the package's pytest plugin, whose engine starts a real
Jupyter kernel for scripted code. Which test will is not told by any fixture (every one uses the plugin's), so the
folder is marked as a whole: `kernel`, and so `slow`, as tests/conftest.py marks the project's own tests. Each step
the examples take is also covered cheaply by tests/test_pytest_plugin.py."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE) and not item.get_closest_marker("kernel"):
            item.add_marker(pytest.mark.kernel)
            item.add_marker(pytest.mark.slow)
