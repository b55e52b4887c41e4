"""Where the server keeps its data unless told: $OFFLINE_ASSISTANTS_DATA, else the platform's user data folder.

A module of its own so that Settings (config.py) and the model catalog, which config.py depends on, share the one
rule: the catalog assembles packed models (llm/packed.py) into this folder when no data dir is given.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_data_dir() -> Path:
    env = os.environ.get("OFFLINE_ASSISTANTS_DATA")
    return Path(env) if env else Path(platformdirs.user_data_dir("offline-assistants"))
