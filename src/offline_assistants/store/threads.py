from __future__ import annotations

from typing import Any

from offline_assistants.errors import NotFound
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.threads import Thread
from offline_assistants.store.db import Database, dumps, insert, loads, update
from offline_assistants.store.pagination import paginate

JSON_FIELDS = ("tool_resources", "metadata")


def to_thread(row: dict[str, Any]) -> Thread:
    return Thread(
        id=row["id"],
        created_at=row["created_at"],
        metadata=loads(row["metadata"]),
        tool_resources=loads(row["tool_resources"]),
    )


class ThreadStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def insert(self, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            insert(db, "threads", {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()})

    def row(self, thread_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM threads WHERE id = ?", (thread_id,))
        if row is None:
            raise NotFound("thread", thread_id)
        return row

    def get(self, thread_id: str) -> Thread:
        return to_thread(self.row(thread_id))

    def page(self, params: ListParams) -> Page[Thread]:
        return paginate(self.db, "threads", params, to_thread)

    def page_conversations(self, params: ListParams) -> Page[Thread]:
        """The threads that are conversations (ids `conv_...`; GLOB, unlike LIKE, takes `_` as itself)."""
        return paginate(self.db, "threads", params, to_thread, where="id GLOB 'conv_*'")

    def update(self, thread_id: str, values: dict[str, Any]) -> Thread:
        with self.db.write() as db:
            self.row(thread_id)
            update(db, "threads", thread_id, {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()})
        return self.get(thread_id)

    def set_cut(self, thread_id: str, seq: int) -> None:
        with self.db.write() as db:
            db.execute("UPDATE threads SET cut_seq = ? WHERE id = ?", (seq, thread_id))

    def delete(self, thread_id: str) -> None:
        # Messages, runs and steps go with it through ON DELETE CASCADE, in the same transaction.
        with self.db.write() as db:
            self.row(thread_id)
            db.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
