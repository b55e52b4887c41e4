"""Migrations run once, are recorded in `_migrations`, and are not run again when the database is reopened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from offline_assistants.store import Database
from offline_assistants.store import migrations as m


def names(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def test_fresh_database_records_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Database(path).close()
    assert names(path) == [fn.__name__ for fn in m.MIGRATIONS]
    assert names(path)[:2] == ["m001_initial", "m002_meta"]
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        applied = [r[0] for r in conn.execute("SELECT applied_at FROM _migrations")]
    assert {"assistants", "threads", "messages", "runs", "run_steps", "files", "meta", "_migrations"} <= tables
    assert all(isinstance(t, int) and t > 1_600_000_000 for t in applied)


def test_reopen_does_not_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    first = Database(path)
    first.query("SELECT 1")
    with first.write() as db:
        db.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    first.close()
    before = names(path)
    calls: list[str] = []
    wrapped = []
    for fn in m.MIGRATIONS:
        def spy(db: sqlite_utils.Database, fn: m.Migration = fn) -> None:
            calls.append(fn.__name__)
            fn(db)
        spy.__name__ = fn.__name__
        wrapped.append(spy)
    monkeypatch.setattr(m, "MIGRATIONS", wrapped)
    second = Database(path)  # a second open of the same file: nothing to do
    assert calls == []
    assert second.query("SELECT value FROM meta WHERE key = 'k'") == [{"value": "v"}]
    second.close()
    assert names(path) == before
    # Two open at once on one file is fine too.
    a, b = Database(path), Database(path)
    a.close()
    b.close()
    assert calls == []


def test_new_migration_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    Database(path).close()

    def m999_extra(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE extra (x INTEGER)")

    monkeypatch.setattr(m, "MIGRATIONS", [*m.MIGRATIONS, m999_extra])
    Database(path).close()
    assert names(path)[-1] == "m999_extra"
    Database(path).close()  # would fail with "table extra already exists" if it ran again
    assert names(path).count("m999_extra") == 1


def test_failed_migration_leaves_no_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.db"
    Database(path).close()

    def m998_broken(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    monkeypatch.setattr(m, "MIGRATIONS", [*m.MIGRATIONS, m998_broken])
    with pytest.raises(RuntimeError):
        Database(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall() == []
    assert "m998_broken" not in names(path)


def test_migrate_returns_what_ran(tmp_path: Path) -> None:
    db = sqlite_utils.Database(sqlite3.connect(tmp_path / "b.db", isolation_level=None))
    db.execute("BEGIN")
    assert m.migrate(db) == [fn.__name__ for fn in m.MIGRATIONS]
    db.execute("COMMIT")
    assert m.migrate(db) == []
    db.conn.close()
