"""What must hold once a killed server has started again, read straight from its database and data directory.

- SQLite's own checks pass (`PRAGMA integrity_check`, `PRAGMA foreign_key_check`).
- Nothing is left mid-flight: no run `queued`, `in_progress` or `cancelling`; no step or message `in_progress`
  (a step of a run that waits in `requires_action` is the API's own state, and waits with it); no upload held by
  a completion; no vector store file `in_progress` once the indexer has had its time (it resumes them).
- No bytes on disk that no row names: a file or an upload part the killed process was writing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

LEFT_IN_FLIGHT = {
    "runs": "SELECT id, status FROM runs WHERE status IN ('queued', 'in_progress', 'cancelling')",
    "run steps": "SELECT s.id, s.status FROM run_steps s JOIN runs r ON r.id = s.run_id "
                 "WHERE s.status = 'in_progress' AND r.status != 'requires_action'",
    "messages": "SELECT id, status FROM messages WHERE status = 'in_progress'",
    "uploads": "SELECT id, status FROM uploads WHERE claimed != 0",
}
INDEXING = "SELECT vector_store_id || '/' || id, status FROM vector_store_files WHERE status = 'in_progress'"


def _read(database: Path, sql: str, params: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def store_problems(database: Path) -> list[str]:
    problems = []
    integrity = _read(database, "PRAGMA integrity_check")
    if integrity != [("ok",)]:
        problems.append(f"integrity_check: {integrity[:5]}")
    if broken := _read(database, "PRAGMA foreign_key_check"):
        problems.append(f"foreign_key_check: {broken[:5]}")
    for what, sql in LEFT_IN_FLIGHT.items():
        if rows := _read(database, sql):
            problems.append(f"{what} left in flight: {rows[:5]}")
    return problems


def indexing_problems(database: Path, timeout: float = 30.0) -> list[str]:
    """Files a previous process left `in_progress` must end `completed` or `failed` after the restart."""
    deadline = time.monotonic() + timeout
    while rows := _read(database, INDEXING):
        if time.monotonic() > deadline:
            return [f"vector store files still in_progress {timeout:.0f}s after the restart: {rows[:5]}"]
        time.sleep(0.1)
    return []


def disk_problems(data_dir: Path, database: Path) -> list[str]:
    """Bytes under files/ and uploads/ that no row names."""
    problems = []
    files = {row[0] for row in _read(database, "SELECT id FROM files")}
    strays = sorted(p.name for p in (data_dir / "files").iterdir() if p.name not in files)
    if strays:
        problems.append(f"files/ holds bytes no file row names: {strays[:5]}")
    parts = {(row[0], row[1]) for row in _read(database, "SELECT upload_id, id FROM upload_parts")}
    uploads = data_dir / "uploads"
    if uploads.is_dir():
        loose = sorted(f"{d.name}/{p.name}" for d in uploads.iterdir() if d.is_dir()
                       for p in d.iterdir() if (d.name, p.name) not in parts)
        if loose:
            problems.append(f"uploads/ holds part bytes no part row names: {loose[:5]}")
    return problems


def chunk_count(database: Path, store_id: str, file_id: str) -> int:
    rows = _read(database, "SELECT count(*) FROM chunks WHERE vector_store_id = ? AND file_id = ?", (store_id, file_id))
    return int(str(rows[0][0]))
