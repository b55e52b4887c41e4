"""matplotlib's font list, built once per user by the server and handed to every sandboxed kernel read-only (in its
MPLCONFIGDIR, layout.py): a kernel keeps nothing between starts, and building it again costs its first plot ~1 s."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def font_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("offline-assistants")) / "matplotlib"


def font_lists() -> list[Path]:
    """matplotlib's font list as built by `build_font_list`."""
    return sorted(font_cache_dir().glob("fontlist-*.json"))


_font_build = threading.Lock()


def build_font_list() -> None:
    """Builds the font list once per user, in the background, by our own code (never model code: what kernels
    read must not be written by one of them). Kernels started meanwhile build their own."""
    if font_lists() or not _font_build.acquire(blocking=False):
        return

    def build() -> None:
        where = font_cache_dir()
        try:
            where.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=where) as build:
                env = {"MPLCONFIGDIR": build, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
                subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, timeout=300,
                               capture_output=True, check=False)
                for made in Path(build).glob("fontlist-*.json"):
                    os.replace(made, where / made.name)  # whole, or not there: a kernel never reads half
        except (OSError, subprocess.SubprocessError):
            log.debug("could not build matplotlib's font list", exc_info=True)
        # Not released: one try per process.

    threading.Thread(target=build, name="font-list", daemon=True).start()
