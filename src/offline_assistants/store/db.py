"""The SQLite connection: WAL, one writer at a time (BEGIN IMMEDIATE), foreign keys, a busy timeout.

Every thread gets its own connection (sqlite3 connections are not meant to be shared). The HTTP server's worker
threads come and go, and a dead thread's connection is not freed with it (sqlite3 connections sit in reference
cycles that only a full garbage collection breaks): so each new connection first closes those of threads that
have ended, and a long-running server never piles up file descriptors. Every write goes
through `Database.write()`, which holds a process-wide lock and an IMMEDIATE transaction, so concurrent
requests never interleave half-done changes and bad input rolls back whole.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from offline_assistants.store.migrations import migrate

BUSY_TIMEOUT_MS = 10_000


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def loads(text: str | bytes | None) -> Any:
    return None if text is None else json.loads(text)


class _ThreadConnection(threading.local):
    db: sqlite_utils.Database | None = None  # this thread's connection, made on first use


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = _ThreadConnection()
        self._write_lock = threading.RLock()
        self._all: list[tuple[threading.Thread, sqlite_utils.Database]] = []  # each connection and its thread
        self._all_lock = threading.Lock()
        with self.write() as db:
            migrate(db)

    def _connect(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        db = sqlite_utils.Database(conn)
        with self._all_lock:
            alive = []
            for thread, other in self._all:
                if thread.is_alive():
                    alive.append((thread, other))
                else:
                    other.conn.close()  # its thread has ended: nothing can be using it
            alive.append((threading.current_thread(), db))
            self._all = alive
        return db

    @property
    def db(self) -> sqlite_utils.Database:
        db = self._local.db
        if db is None:
            db = self._local.db = self._connect()
        return db

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cursor = self.db.conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def query_one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One writer at a time; everything inside commits together or not at all."""
        with self._write_lock:
            db = self.db
            if db.conn.in_transaction:  # nested use inside an open write: join it
                yield db
                return
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.conn.execute("COMMIT")
            except BaseException:
                # SQLite may have ended the transaction itself (RAISE(ROLLBACK), some I/O errors): then a ROLLBACK
                # would fail and hide the real error. A failed COMMIT (a deferred constraint) leaves it open: end it,
                # or the next write on this thread would join it and never commit.
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._all_lock:
            for _thread, db in self._all:
                try:
                    db.conn.close()
                except sqlite3.Error:  # pragma: no cover
                    pass
            self._all.clear()
        self._local = _ThreadConnection()


def insert(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> None:
    # Raw INSERT rather than Table.insert(): the latter commits via `with conn:`, ending our transaction early.
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))


def update(db: sqlite_utils.Database, table: str, id: str, values: dict[str, Any]) -> None:
    if not values:
        return
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE {table} SET {sets} WHERE id = ?", [*values.values(), id])
