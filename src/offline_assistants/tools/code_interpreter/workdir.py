"""A session's working directory as the runner sees it: the names of files handed in, the snapshot that finds
the files the code wrote (regular files only, never symlinks), and reading or removing one of those files from
outside, where the code may have swapped a directory on the way for a symlink since it was found."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

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


def _inside(root: Path, fd: int) -> bool:
    """Whether what `fd` opened lies under root: asked of the open file itself, so no later swap can change it."""
    real = os.path.realpath(f"/proc/self/fd/{fd}")
    base = os.path.realpath(root)
    return real == base or real.startswith(base + os.sep)


def open_file(root: Path, path: Path) -> BinaryIO:
    """The regular file at `path` under root, open for reading; FileNotFoundError if there is none there (a
    symlink, a FIFO, a path that leads outside root)."""
    try:
        # O_NONBLOCK: opening a FIFO the code planted must not hang the server.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise FileNotFoundError(str(path)) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode) or not _inside(root, fd):
        os.close(fd)
        raise FileNotFoundError(str(path))
    return os.fdopen(fd, "rb")


def remove_file(root: Path, path: Path) -> None:
    """Unlink `path` (a symlink itself, never what it names) if its directory lies under root; nothing if it is
    gone already."""
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        if _inside(root, fd):
            os.unlink(path.name, dir_fd=fd)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        pass
    finally:
        os.close(fd)
