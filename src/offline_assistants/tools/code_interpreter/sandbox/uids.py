"""The uid a kernel drops to when the server runs as root (the root layout, layout.py): RLIMIT_NPROC exempts uid 0
even in a user namespace, so each session's kernel runs as an id of its own, and its files are handed to it."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from pathlib import Path

# Root's kernels run as BASE_UID + crc32(session) % UID_SPAN: ids above every account and systemd's container
# ranges (which end at 1879048191), below 2^31, so per-session ids never collide with a real user.
BASE_UID = 1_900_000_000
UID_SPAN = 1_000_000


def session_uid(session_id: str) -> int:
    return BASE_UID + zlib.crc32(session_id.encode()) % UID_SPAN


def chown_for(uid: int | None, paths: Sequence[Path]) -> None:
    if uid is not None:
        for path in paths:
            os.chown(path, uid, uid)
