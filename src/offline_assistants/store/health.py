"""A look at a database file without changing it, for `offline-assistants doctor`: is it SQLite, does it pass
SQLite's integrity check, its journal mode, how big it and its WAL are, which migrations it has and lacks."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

# Importing this module runs store/__init__, which imports every repository: every migration is registered.
from offline_assistants.store.migrations import MIGRATIONS

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class DatabaseHealth:
    is_sqlite: bool
    integrity: str = ""  # "ok", or SQLite's first complaint
    journal_mode: str = ""
    bytes: int = 0
    wal_bytes: int = 0
    pending: list[str] = field(default_factory=list)  # migrations `serve` will apply
    unknown: list[str] = field(default_factory=list)  # applied by a newer version than this one
    check_s: float = 0.0
    error: str = ""  # why it could not be read


def inspect(path: Path) -> DatabaseHealth:
    """Reads only: a read-only connection (the server may be running; in WAL mode that is fine)."""
    with open(path, "rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return DatabaseHealth(is_sqlite=False, bytes=path.stat().st_size)
    wal = path.with_name(path.name + "-wal")
    size, wal_size = path.stat().st_size, wal.stat().st_size if wal.exists() else 0
    start = time.monotonic()
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            report = conn.execute("PRAGMA integrity_check(1)").fetchone()[0]
            # One line: SQLite heads a complaint with "*** in database main ***" on a line of its own.
            integrity = "; ".join(line for line in report.splitlines() if not line.startswith("***"))
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            has_log = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone()
            applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")} if has_log else set()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return DatabaseHealth(is_sqlite=True, error=str(exc), bytes=size, wal_bytes=wal_size)
    known = [fn.__name__ for fn in MIGRATIONS]
    return DatabaseHealth(
        is_sqlite=True, integrity=integrity, journal_mode=mode, bytes=size, wal_bytes=wal_size,
        pending=[name for name in known if name not in applied], unknown=sorted(applied - set(known)),
        check_s=time.monotonic() - start,
    )
