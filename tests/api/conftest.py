"""Fixtures the API tests share."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """The official `openai` npm package, installed once into a cache folder outside the repository."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Node.js seed test")
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "offline-assistants" / "node-sdk"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "node_modules" / "openai").is_dir():
        (folder / "package.json").write_text('{"name": "seed-check", "private": true, "type": "module"}')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "openai@5"], cwd=folder,
                       check=True, timeout=300)
    return folder
