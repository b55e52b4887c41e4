"""Vector stores, their files and batches, and the chunks that make them searchable.

Chunks live in one table with their embedding (float32 bytes) and are mirrored into an FTS5 index
(`chunks_fts`, external content), kept in step by hand on insert and delete: a trigger body's `;` would not
survive the migration runner, and doing it here keeps every write of a chunk in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from offline_assistants.errors import NotFound
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.vector_stores import (
    FileCounts,
    VectorStore,
    VectorStoreFile,
    VectorStoreFileBatch,
)
from offline_assistants.store.db import Database, dumps, insert, loads, update
from offline_assistants.store.pagination import paginate

STORE_JSON = ("metadata", "expires_after")
FILE_JSON = ("last_error", "chunking_strategy", "attributes")


@dataclass(frozen=True)
class ChunkRow:
    pk: int
    vector_store_id: str
    file_id: str
    text: str


def _counts(rows: list[dict[str, Any]]) -> FileCounts:
    by_status = {row["status"]: row["n"] for row in rows}  # one row per status (GROUP BY status)
    return FileCounts(**by_status, total=sum(by_status.values()))


def to_file(row: dict[str, Any]) -> VectorStoreFile:
    return VectorStoreFile(
        id=row["id"], created_at=row["created_at"], vector_store_id=row["vector_store_id"], status=row["status"],
        usage_bytes=row["usage_bytes"], last_error=loads(row["last_error"]),
        chunking_strategy=loads(row["chunking_strategy"]), attributes=loads(row["attributes"]))


class VectorStoreStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        # Bumped on every write that can change what a store's search sees, so a searcher may keep a store's
        # embedding matrix in memory between searches (this process is the database's only writer).
        self._generations: dict[str, int] = {}

    def generation(self, store_id: str) -> int:
        return self._generations.get(store_id, 0)

    def _changed(self, store_id: str) -> None:
        self._generations[store_id] = self._generations.get(store_id, 0) + 1

    # --- stores ---
    def insert(self, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            insert(db, "vector_stores", {k: (dumps(v) if k in STORE_JSON else v) for k, v in values.items()})

    def row(self, store_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM vector_stores WHERE id = ?", (store_id,))
        if row is None:
            raise NotFound("vector store", store_id)
        return row

    def exists(self, store_id: str) -> bool:
        return self.db.query_one("SELECT 1 AS x FROM vector_stores WHERE id = ?", (store_id,)) is not None

    def get(self, store_id: str, now: int) -> VectorStore:
        return self._object(self.row(store_id), now)

    def _object(self, row: dict[str, Any], now: int) -> VectorStore:
        counts = _counts(self.db.query(
            "SELECT status, count(*) AS n FROM vector_store_files WHERE vector_store_id = ? GROUP BY status",
            (row["id"],)))
        used = self.db.query_one("SELECT coalesce(sum(usage_bytes), 0) AS b FROM vector_store_files "
                                 "WHERE vector_store_id = ?", (row["id"],))
        expired = row["expires_at"] is not None and row["expires_at"] <= now
        status = "expired" if expired else "in_progress" if counts.in_progress else "completed"
        return VectorStore(
            id=row["id"], created_at=row["created_at"], name=row["name"], description=row["description"],
            usage_bytes=int(used["b"]) if used else 0, file_counts=counts, status=status,  # type: ignore[arg-type]
            expires_after=loads(row["expires_after"]), expires_at=row["expires_at"],
            last_active_at=row["last_active_at"], metadata=loads(row["metadata"]))

    def update(self, store_id: str, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            self.row(store_id)
            update(db, "vector_stores", store_id, {k: (dumps(v) if k in STORE_JSON else v) for k, v in values.items()})

    def page(self, params: ListParams, now: int) -> Page[VectorStore]:
        return paginate(self.db, "vector_stores", params, lambda row: self._object(row, now))

    def delete(self, store_id: str) -> None:
        with self.db.write() as db:
            self.row(store_id)
            self._drop_chunks(db, "vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vector_store_files WHERE vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vector_store_file_batches WHERE vector_store_id = ?", (store_id,))
            db.execute("DELETE FROM vector_stores WHERE id = ?", (store_id,))
        self._changed(store_id)

    def expiring(self, now: int) -> list[str]:
        rows = self.db.query("SELECT id FROM vector_stores WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        return [r["id"] for r in rows]

    def thread_store(self, thread_id: str) -> str | None:
        """The store made implicitly for a thread's attachments, if there is one."""
        row = self.db.query_one("SELECT id FROM vector_stores WHERE thread_id = ?", (thread_id,))
        return row["id"] if row else None

    def attached(self, assistant_id: str, thread_id: str, run_resources: dict[str, Any] | None) -> list[str]:
        """The vector store ids file search may read in a run: the assistant's, the thread's, the run's own."""
        ids: list[str] = []
        assistant = self.db.query_one("SELECT tool_resources FROM assistants WHERE id = ?", (assistant_id,))
        thread = self.db.query_one("SELECT tool_resources FROM threads WHERE id = ?", (thread_id,))
        for resources in (loads(assistant["tool_resources"]) if assistant else None,
                          loads(thread["tool_resources"]) if thread else None, run_resources):
            ids += ((resources or {}).get("file_search") or {}).get("vector_store_ids") or []
        return list(dict.fromkeys(ids))

    # --- files ---
    def insert_file(self, values: dict[str, Any]) -> VectorStoreFile:
        with self.db.write() as db:
            db.execute("DELETE FROM vector_store_files WHERE vector_store_id = ? AND id = ?",
                       (values["vector_store_id"], values["id"]))
            self._drop_chunks(db, "vector_store_id = ? AND file_id = ?", (values["vector_store_id"], values["id"]))
            insert(db, "vector_store_files", {k: (dumps(v) if k in FILE_JSON else v) for k, v in values.items()})
        self._changed(values["vector_store_id"])
        return self.get_file(values["vector_store_id"], values["id"])

    def file_row(self, store_id: str, file_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM vector_store_files WHERE vector_store_id = ? AND id = ?",
                                (store_id, file_id))
        if row is None:
            raise NotFound("vector store file", file_id)
        return row

    def get_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        return to_file(self.file_row(store_id, file_id))

    def update_file(self, store_id: str, file_id: str, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            row = self.file_row(store_id, file_id)
            sets = ", ".join(f"{k} = ?" for k in values)
            db.execute(f"UPDATE vector_store_files SET {sets} WHERE pk = ?",
                       (*[(dumps(v) if k in FILE_JSON else v) for k, v in values.items()], row["pk"]))
        self._changed(store_id)

    def page_files(self, store_id: str, params: ListParams, status: str | None = None,
                   batch_id: str | None = None) -> Page[VectorStoreFile]:
        where, args = "vector_store_id = ?", [store_id]
        if status is not None:
            where, args = where + " AND status = ?", [*args, status]
        if batch_id is not None:
            where, args = where + " AND batch_id = ?", [*args, batch_id]
        return paginate(self.db, "vector_store_files", params, to_file, where=where, args=tuple(args))

    def delete_file(self, store_id: str, file_id: str) -> None:
        with self.db.write() as db:
            self.file_row(store_id, file_id)
            self._drop_chunks(db, "vector_store_id = ? AND file_id = ?", (store_id, file_id))
            db.execute("DELETE FROM vector_store_files WHERE vector_store_id = ? AND id = ?", (store_id, file_id))
        self._changed(store_id)

    def pending_files(self) -> list[tuple[str, str]]:
        """(store id, file id) of every file still in_progress: what a restart must index again."""
        rows = self.db.query("SELECT vector_store_id, id FROM vector_store_files WHERE status = 'in_progress' "
                             "ORDER BY pk")
        return [(r["vector_store_id"], r["id"]) for r in rows]

    # --- batches ---
    def insert_batch(self, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            insert(db, "vector_store_file_batches", values)

    def get_batch(self, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        row = self.db.query_one("SELECT * FROM vector_store_file_batches WHERE vector_store_id = ? AND id = ?",
                                (store_id, batch_id))
        if row is None:
            raise NotFound("vector store file batch", batch_id)
        counts = _counts(self.db.query(
            "SELECT status, count(*) AS n FROM vector_store_files WHERE batch_id = ? GROUP BY status", (batch_id,)))
        status = row["status"]
        if status == "in_progress" and not counts.in_progress:
            status = "failed" if counts.failed and not counts.completed else "completed"
        return VectorStoreFileBatch(id=row["id"], created_at=row["created_at"], vector_store_id=store_id,
                                    status=status, file_counts=counts)

    def set_batch_status(self, batch_id: str, status: str) -> None:
        with self.db.write() as db:
            db.execute("UPDATE vector_store_file_batches SET status = ? WHERE id = ?", (status, batch_id))

    # --- chunks ---
    def add_chunks(self, store_id: str, file_id: str, texts: list[str], embeddings: np.ndarray) -> None:
        """The file's chunks, replacing any it has: a process killed after writing them, before marking the file
        completed, indexes it again at start-up, and the chunks must not be there twice."""
        with self.db.write() as db:
            self._drop_chunks(db, "vector_store_id = ? AND file_id = ?", (store_id, file_id))
            for seq, (text, vector) in enumerate(zip(texts, embeddings)):
                cursor = db.execute(
                    "INSERT INTO chunks (vector_store_id, file_id, seq, text, embedding) VALUES (?, ?, ?, ?, ?)",
                    (store_id, file_id, seq, text, np.asarray(vector, dtype=np.float32).tobytes()))
                db.execute("INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)", (cursor.lastrowid, text))
        self._changed(store_id)

    def _drop_chunks(self, db: Any, where: str, args: tuple[Any, ...]) -> None:
        for pk, text in db.execute(f"SELECT pk, text FROM chunks WHERE {where}", args).fetchall():
            db.execute("INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', ?, ?)", (pk, text))
        db.execute(f"DELETE FROM chunks WHERE {where}", args)

    def delete_chunks(self, store_id: str, file_id: str) -> None:
        with self.db.write() as db:
            self._drop_chunks(db, "vector_store_id = ? AND file_id = ?", (store_id, file_id))
        self._changed(store_id)

    def file_text(self, store_id: str, file_id: str) -> str | None:
        """The text extracted from the file when it was indexed (None before, or when it failed)."""
        text = self.file_row(store_id, file_id)["text"]
        return str(text) if text is not None else None

    def searchable(self, store_ids: list[str]) -> tuple[list[ChunkRow], np.ndarray]:
        """Every completed chunk of these stores, and their embeddings as one matrix (rows in the same order)."""
        if not store_ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        marks = ",".join("?" * len(store_ids))
        rows = self.db.query(
            f"SELECT c.pk, c.vector_store_id, c.file_id, c.text, c.embedding FROM chunks c "
            f"JOIN vector_store_files f ON f.vector_store_id = c.vector_store_id AND f.id = c.file_id "
            f"WHERE c.vector_store_id IN ({marks}) AND f.status = 'completed' ORDER BY c.pk", tuple(store_ids))
        chunks = [ChunkRow(r["pk"], r["vector_store_id"], r["file_id"], r["text"]) for r in rows]
        if not rows:
            return chunks, np.zeros((0, 0), dtype=np.float32)
        matrix = np.stack([np.frombuffer(r["embedding"], dtype=np.float32) for r in rows])
        return chunks, matrix

    def bm25(self, match: str, limit: int) -> dict[int, float]:
        """FTS5 BM25 per chunk pk for a MATCH expression (already escaped), best `limit` of them, of every store:
        the caller keeps those of the stores it searches. Higher is better (FTS5's bm25() is negative). Without a
        JOIN on chunks to filter by store, FTS5 does 2.6x less work (7 ms against 19 at 100k chunks,
        benchmarks/retrieval.py); the price is that other stores' chunks can take some of the `limit` places."""
        if not match:
            return {}
        rows = self.db.query("SELECT rowid AS pk, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ? "
                             "ORDER BY bm25(chunks_fts) LIMIT ?", (match, limit))
        return {int(r["pk"]): float(r["score"]) for r in rows}

    def term_count(self, term: str) -> int:
        """How many chunks (of any store) an FTS5 string matches: cheap next to scoring them, so a query keeps
        its rarest terms within a budget (retrieval/ranking.py lexical_query)."""
        row = self.db.query_one("SELECT count(*) AS n FROM chunks_fts WHERE chunks_fts MATCH ?", (term,))
        return int(row["n"]) if row else 0

    def terms_found(self, terms: list[str], store_ids: list[str]) -> int:
        """How many of these terms (FTS5 strings, already quoted) occur in the stores' completed files."""
        if not store_ids:
            return 0
        marks = ",".join("?" * len(store_ids))
        found = 0
        for term in terms:
            row = self.db.query_one(
                f"SELECT 1 AS x FROM chunks_fts JOIN chunks c ON c.pk = chunks_fts.rowid "
                f"JOIN vector_store_files f ON f.vector_store_id = c.vector_store_id AND f.id = c.file_id "
                f"WHERE chunks_fts MATCH ? AND c.vector_store_id IN ({marks}) AND f.status = 'completed' LIMIT 1",
                (term, *store_ids))
            found += row is not None
        return found

    def file_attributes(self, store_ids: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
        if not store_ids:
            return {}
        marks = ",".join("?" * len(store_ids))
        rows = self.db.query(f"SELECT vector_store_id, id, attributes FROM vector_store_files "
                             f"WHERE vector_store_id IN ({marks})", tuple(store_ids))
        return {(r["vector_store_id"], r["id"]): loads(r["attributes"]) or {} for r in rows}
