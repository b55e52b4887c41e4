"""The SQLite layer: WAL, foreign keys, all-or-nothing writes, cascades, and index-backed pagination."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline_assistants.schemas.common import ListParams
from offline_assistants.store import Database, Store
from offline_assistants.store.messages import pack


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(Database(tmp_path / "s.db"))
    yield s
    s.close()


def add_thread(store: Store, thread_id: str = "thread_1") -> str:
    store.threads.insert({"id": thread_id, "created_at": 1, "metadata": {}, "tool_resources": None})
    return thread_id


def add_message(store: Store, thread_id: str, i: int, tokens: list[int] | None = None) -> str:
    message_id = f"msg_{thread_id}_{i:04d}"
    store.messages.insert({
        "id": message_id, "thread_id": thread_id, "created_at": 1, "role": "user",
        "content": [{"type": "text", "text": {"value": str(i), "annotations": []}}], "attachments": [],
        "metadata": {}, "status": "completed", "completed_at": 1, "assistant_id": None, "run_id": None,
    }, tokens if tokens is not None else [i, i])
    return message_id


def test_pragmas(store: Store) -> None:
    db = store.database
    assert db.query("PRAGMA journal_mode") == [{"journal_mode": "wal"}]
    assert db.query("PRAGMA foreign_keys") == [{"foreign_keys": 1}]
    assert db.query("PRAGMA busy_timeout")[0]["timeout"] >= 1000
    seen: dict[str, object] = {}

    def other_thread() -> None:  # every thread's own connection is set up the same way
        seen["fk"] = db.query("PRAGMA foreign_keys")[0]["foreign_keys"]
        seen["wal"] = db.query("PRAGMA journal_mode")[0]["journal_mode"]

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert seen == {"fk": 1, "wal": "wal"}


def test_foreign_keys_are_enforced(store: Store) -> None:
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError), store.database.write() as db:
        db.execute("INSERT INTO messages (id, thread_id, seq, created_at, role, content, status) "
                   "VALUES ('m', 'thread_missing', 1, 1, 'user', '[]', 'completed')")


def test_failed_write_rolls_back_completely(store: Store) -> None:
    add_thread(store, "thread_keep")
    with pytest.raises(RuntimeError), store.database.write():
        add_thread(store, "thread_a")
        add_message(store, "thread_a", 1)
        store.assistants.insert({"id": "asst_a", "created_at": 1, "model": "m", "tools": [], "metadata": {}})
        store.threads.update("thread_keep", {"metadata": {"changed": "yes"}})
        raise RuntimeError("boom")
    assert [r["id"] for r in store.database.query("SELECT id FROM threads")] == ["thread_keep"]
    assert store.database.query("SELECT id FROM messages") == []
    assert store.database.query("SELECT id FROM assistants") == []
    assert store.threads.get("thread_keep").metadata == {}
    assert not store.database.db.conn.in_transaction
    # The connection is usable afterwards.
    add_message(store, "thread_keep", 1)
    assert len(store.database.query("SELECT id FROM messages")) == 1


def test_sql_error_inside_write_rolls_back(store: Store) -> None:
    import sqlite3

    add_thread(store, "thread_1")
    with pytest.raises(sqlite3.IntegrityError), store.database.write():
        add_message(store, "thread_1", 1)
        add_thread(store, "thread_1")  # duplicate id
    assert store.database.query("SELECT id FROM messages") == []
    assert store.database.query_one("SELECT next_seq FROM threads WHERE id = 'thread_1'") == {"next_seq": 1}


def test_messages_sequence_and_token_sums(store: Store) -> None:
    t = add_thread(store)
    ids = [add_message(store, t, i, [0] * (i + 1)) for i in range(5)]  # 1, 2, 3, 4, 5 tokens
    rows = store.database.query("SELECT id, seq, n_tokens, cum_tokens FROM messages ORDER BY seq")
    assert [r["id"] for r in rows] == ids
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["cum_tokens"] for r in rows] == [1, 3, 6, 10, 15]
    store.messages.delete(t, ids[1])
    rows = store.database.query("SELECT cum_tokens FROM messages ORDER BY seq")
    assert [r["cum_tokens"] for r in rows] == [1, 4, 8, 13]
    store.messages.set_tokens(t, ids[2], [0] * 10)  # 3 -> 10 tokens
    rows = store.database.query("SELECT n_tokens, cum_tokens, tokens FROM messages ORDER BY seq")
    assert [r["cum_tokens"] for r in rows] == [1, 11, 15, 20]
    assert rows[1]["tokens"] == pack([0] * 10)


def test_thread_delete_cascades(store: Store) -> None:
    t = add_thread(store)
    other = add_thread(store, "thread_2")
    for i in range(3):
        add_message(store, t, i)
    add_message(store, other, 0)
    store.runs.insert({"id": "run_1", "thread_id": t, "assistant_id": "asst_1", "created_at": 1, "status": "completed",
                       "model": "m"})
    store.runs.insert_step({"id": "step_1", "run_id": "run_1", "thread_id": t, "assistant_id": "asst_1",
                            "created_at": 1, "type": "message_creation", "status": "completed",
                            "step_details": {"type": "message_creation"}})
    store.threads.delete(t)
    assert store.database.query("SELECT thread_id FROM messages") == [{"thread_id": other}]
    assert store.database.query("SELECT id FROM runs") == []
    assert store.database.query("SELECT id FROM run_steps") == []


def plan(store: Store, sql: str, params: tuple[object, ...]) -> str:
    rows = store.database.query("EXPLAIN QUERY PLAN " + sql, params)
    details = [str(r["detail"]) for r in rows]
    for detail in details:  # never a full scan of a table: a SCAN must walk an index
        assert not (detail.startswith("SCAN") and "INDEX" not in detail), (sql, details)
    return " | ".join(details)


def capture_sql(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[object, ...]]]:
    seen: list[tuple[str, tuple[object, ...]]] = []
    original = store.database.query

    def spy(sql: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
        seen.append((sql, tuple(params)))
        return original(sql, params)

    monkeypatch.setattr(store.database, "query", spy)
    return seen


@pytest.mark.parametrize("params", [
    ListParams(), ListParams(order="asc"), ListParams(after="msg_thread_1_0100"),
    ListParams(before="msg_thread_1_0100"),
    ListParams(order="asc", after="msg_thread_1_0100", before="msg_thread_1_0150", limit=100),
])
def test_message_pagination_uses_an_index(store: Store, monkeypatch: pytest.MonkeyPatch, params: ListParams) -> None:
    t = add_thread(store)
    for i in range(200):
        add_message(store, t, i)
    add_thread(store, "thread_2")
    for i in range(200):
        add_message(store, "thread_2", i)
    store.database.query("ANALYZE")
    seen = capture_sql(store, monkeypatch)
    page = store.messages.page(t, params)
    assert page.data
    monkeypatch.undo()
    assert seen
    for sql, args in seen:
        detail = plan(store, sql, args)
        assert "USING INDEX" in detail or "USING COVERING INDEX" in detail, (sql, detail)
        assert "TEMP B-TREE" not in detail, (sql, detail)  # the order comes from the index, no sort


def test_other_list_queries_use_indexes(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    t = add_thread(store)
    for i in range(20):
        store.runs.insert({"id": f"run_{i:03d}", "thread_id": t, "assistant_id": "a", "created_at": 1,
                           "status": "completed", "model": "m"})
        store.files.insert({"id": f"file-{i:03d}", "created_at": 1, "bytes": 1, "filename": "f",
                            "purpose": "assistants" if i % 2 else "vision", "path": "/nonexistent"})
    seen = capture_sql(store, monkeypatch)
    store.runs.page(t, ListParams(after="run_005"))
    store.files.page(ListParams(after="file-003"), "assistants")
    store.runs.list_steps("run_001", ListParams())
    monkeypatch.undo()
    for sql, args in seen:
        detail = plan(store, sql, args)
        assert "INDEX" in detail or "INTEGER PRIMARY KEY" in detail, (sql, detail)
        assert "TEMP B-TREE" not in detail, (sql, detail)


def test_concurrent_writers_do_not_interleave(store: Store) -> None:
    t = add_thread(store)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(25):
                add_message(store, t, k * 100 + i)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    rows = store.database.query("SELECT seq, n_tokens, cum_tokens FROM messages WHERE thread_id = ? ORDER BY seq", (t,))
    assert [r["seq"] for r in rows] == list(range(1, 101))
    running = 0
    for r in rows:
        running += r["n_tokens"]
        assert r["cum_tokens"] == running


def test_error_that_ends_the_transaction_itself_is_not_masked(store: Store) -> None:
    import sqlite3

    with store.database.write() as db:
        db.execute("CREATE TEMP TRIGGER refuse BEFORE INSERT ON meta WHEN NEW.key = 'bad' "
                   "BEGIN SELECT RAISE(ROLLBACK, 'refused by trigger'); END")
    # not "cannot rollback"
    with pytest.raises(sqlite3.IntegrityError, match="refused by trigger"), store.database.write() as db:
        db.execute("INSERT INTO meta VALUES ('good', '1')")
        db.execute("INSERT INTO meta VALUES ('bad', '1')")
    assert store.database.query("SELECT key FROM meta") == []
    assert not store.database.db.conn.in_transaction


def test_failed_commit_does_not_leave_a_transaction_open(store: Store) -> None:
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError), store.database.write() as db:
        db.execute("PRAGMA defer_foreign_keys = ON")  # the FK check moves to COMMIT, which then fails
        db.execute("INSERT INTO messages (id, thread_id, seq, created_at, role, content, status) "
                   "VALUES ('m', 'thread_missing', 1, 1, 'user', '[]', 'completed')")
    assert not store.database.db.conn.in_transaction
    add_thread(store, "thread_after")  # a later write commits on its own...
    other = sqlite3.connect(store.database.path)  # ...as another connection sees
    try:
        assert other.execute("SELECT id FROM threads").fetchall() == [("thread_after",)]
        assert other.execute("SELECT id FROM messages").fetchall() == []
    finally:
        other.close()


def test_connections_of_ended_threads_are_closed(tmp_path) -> None:  # noqa: ANN001
    """The HTTP server's worker threads come and go; their connections must not pile up as open files."""
    import os
    import threading

    database = Database(tmp_path / "fd.db")

    def open_files() -> int:
        return sum(1 for f in os.listdir("/proc/self/fd") if "fd.db" in os.path.realpath(f"/proc/self/fd/{f}"))

    def work() -> None:
        database.query("SELECT 1")
        with database.write() as db:
            db.execute("SELECT 1")

    before = open_files()
    for _ in range(50):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert open_files() <= before + 6  # this thread's and the last worker's connection (db, -wal, -shm each)
    assert len(database._all) <= 2
    database.close()
