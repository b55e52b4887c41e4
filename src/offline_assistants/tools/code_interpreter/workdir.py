"""A session's working directory as the runner sees it: the names of files handed in, and the snapshot that finds
the files the code wrote (regular files only, never symlinks)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_TRACKED_FILES = 10_000


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Regular files under root (hidden dirs and symlinks skipped: a symlink to
    /etc/passwd must not be handed back as an output file)."""
    found: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            found[os.path.relpath(full, root)] = (st.st_mtime_ns, st.st_size, st.st_ino)
            if len(found) >= MAX_TRACKED_FILES:
                return found
    return found


def validate_input_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"invalid input file name: {name!r}")
