"""Messages, with the per-thread sequence number and token bookkeeping the truncation hot path relies on.

Each row keeps its own token count (`n_tokens`, with the chat template's wrapper), its tokens (`tokens`, packed
int32) and the running sum over the thread up to and including itself (`cum_tokens`). `cum_tokens` grows with
`seq`, so "the oldest message whose suffix still fits" is one index seek on (thread_id, cum_tokens).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from offline_assistants.errors import NotFound
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.messages import Message, MessageRole, text_of
from offline_assistants.store.db import Database, dumps, loads, update
from offline_assistants.store.pagination import paginate

JSON_FIELDS = ("content", "attachments", "metadata", "incomplete_details", "item", "logprobs")
PUBLIC = (
    "id", "created_at", "thread_id", "status", "incomplete_details", "completed_at", "incomplete_at", "role",
    "content", "assistant_id", "run_id", "attachments", "metadata",
)


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, **{k: loads(row[k]) for k in JSON_FIELDS}}


def to_message(row: dict[str, Any]) -> Message:
    values = {k: (loads(row[k]) if k in JSON_FIELDS else row[k]) for k in PUBLIC}
    return Message(**values)


def pack(tokens: list[int]) -> bytes:
    return array("i", tokens).tobytes()


def unpack(blob: bytes | None) -> list[int]:
    out = array("i")
    if blob:
        out.frombytes(blob)
    return out.tolist()


@dataclass(frozen=True)
class StoredText:
    """A finished message as a reader of the whole history sees it: its place in the thread, its role, its text."""

    seq: int
    role: MessageRole
    text: str


class MessageStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def insert(self, values: dict[str, Any], tokens: list[int] | None) -> Message:
        """Append a message to its thread: next seq, running token sum, all in one transaction."""
        with self.db.write() as db:
            _append(db, values["thread_id"], [(values, tokens)])
        return self.get(values["thread_id"], values["id"])

    def insert_row(self, values: dict[str, Any], tokens: list[int]) -> None:
        """Append a row of any kind (a message, or another conversation item) to its thread."""
        with self.db.write() as db:
            _append(db, values["thread_id"], [(values, tokens)])

    def exists(self, row_id: str) -> bool:
        return self.db.query_one("SELECT 1 AS x FROM messages WHERE id = ?", (row_id,)) is not None

    def decoded_row_by_id(self, row_id: str) -> dict[str, Any]:
        """A row of any thread, by its id (an `item_reference`)."""
        row = self.db.query_one("SELECT * FROM messages WHERE id = ?", (row_id,))
        if row is None:
            raise NotFound("message", row_id)
        return _decoded(row)

    def decoded_row(self, thread_id: str, row_id: str) -> dict[str, Any]:
        return _decoded(self.row(thread_id, row_id, items=True))

    def append_many(self, thread_id: str, messages: Sequence[tuple[dict[str, Any], list[int]]]) -> None:
        """Append messages (each its values and tokens, as `Threads.prepare` makes them) in one transaction and one
        executemany: the rows `insert` writes one at a time, for building very long threads (benchmarks)."""
        if messages:
            with self.db.write() as db:
                _append(db, thread_id, messages)

    def texts(self, thread_id: str, *, newest_first: bool = False) -> Iterator[StoredText]:
        """The thread's finished messages in order (or newest first), read one by one: what a stateless window
        chooser has to read on every turn (the truncation benchmark's baselines)."""
        order = "DESC" if newest_first else "ASC"
        for seq, role, content in self.db.db.conn.execute(
            f"SELECT seq, role, content FROM messages WHERE thread_id = ? AND status != 'in_progress' AND item IS NULL "
            f"ORDER BY seq {order}", (thread_id,)
        ):
            yield StoredText(seq, role, text_of(loads(content)))

    def token_rows(self, thread_id: str, *, last_seq: int) -> list[dict[str, Any]]:
        """The stored text and token bookkeeping (seq, role, content, n_tokens, cum_tokens, tokens) of the thread's
        messages up to last_seq: to check that two ways of writing a thread stored the same."""
        return self.db.query("SELECT seq, role, content, n_tokens, cum_tokens, tokens FROM messages "
                             "WHERE thread_id = ? AND seq <= ? ORDER BY seq", (thread_id, last_seq))

    def copy(self, source: str, target: str, *, through_seq: int, new_id: Callable[[], str]) -> dict[str, str]:
        """The source thread's messages up to through_seq, appended to `target` under new ids, tokens and all (a
        Responses fork: the chain so far, continued on a thread of its own); returns old id -> new id."""
        rows = self.db.query("SELECT * FROM messages WHERE thread_id = ? AND seq <= ? AND status != 'in_progress' "
                             "ORDER BY seq", (source, through_seq))
        skip = {"pk", "seq", "n_tokens", "cum_tokens", "tokens"}
        copies = [({**{k: v for k, v in r.items() if k not in skip and k not in JSON_FIELDS},
                    **{k: loads(r[k]) for k in JSON_FIELDS}, "id": new_id(), "thread_id": target},
                   unpack(r["tokens"])) for r in rows]
        if copies:
            with self.db.write() as db:
                _append(db, target, copies)
        return {r["id"]: values["id"] for r, (values, _) in zip(rows, copies)}

    def tokens_through(self, thread_id: str, seq: int) -> int:
        """The running token sum of the thread's messages up to `seq`."""
        row = self.db.query_one("SELECT cum_tokens FROM messages WHERE thread_id = ? AND seq <= ? ORDER BY seq DESC "
                                "LIMIT 1", (thread_id, seq))
        return int(row["cum_tokens"]) if row else 0

    def max_seq(self, thread_id: str, ids: list[str]) -> int:
        """The seq of the newest of these messages (0 when there are none)."""
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        row = self.db.query_one(f"SELECT max(seq) AS seq FROM messages WHERE thread_id = ? AND id IN ({marks})",
                                (thread_id, *ids))
        return int(row["seq"] or 0) if row else 0

    def last_seq(self, thread_id: str, run_id: str | None = None) -> int:
        """The seq of the thread's newest message (of `run_id`'s, when given); 0 when there is none."""
        sql, args = "SELECT max(seq) AS seq FROM messages WHERE thread_id = ?", (thread_id,)
        if run_id is not None:
            sql, args = sql + " AND run_id = ?", (thread_id, run_id)  # type: ignore[assignment]
        row = self.db.query_one(sql, args)
        return int(row["seq"] or 0) if row else 0

    def count(self, thread_id: str) -> int:
        row = self.db.query_one("SELECT count(*) AS n FROM messages WHERE thread_id = ?", (thread_id,))
        return int(row["n"]) if row else 0

    def row(self, thread_id: str, message_id: str, *, items: bool = False) -> dict[str, Any]:
        """A message's row; with `items`, also a row holding another kind of item (a function call, its output)."""
        row = self.db.query_one("SELECT * FROM messages WHERE id = ? AND thread_id = ?", (message_id, thread_id))
        if row is None or (row["item"] is not None and not items):
            raise NotFound("message", message_id)
        return row

    def get(self, thread_id: str, message_id: str) -> Message:
        return to_message(self.row(thread_id, message_id))

    def update(self, thread_id: str, message_id: str, values: dict[str, Any]) -> Message:
        with self.db.write() as db:
            self.row(thread_id, message_id)
            update(db, "messages", message_id, {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()})
        return self.get(thread_id, message_id)

    def set_tokens(self, thread_id: str, message_id: str, tokens: list[int]) -> None:
        """Replace a message's tokens (its text changed) and shift the running sums after it."""
        with self.db.write() as db:
            row = self.row(thread_id, message_id)
            delta = len(tokens) - row["n_tokens"]
            db.execute("UPDATE messages SET tokens = ?, n_tokens = ?, cum_tokens = cum_tokens + ? WHERE id = ?",
                       (pack(tokens), len(tokens), delta, message_id))
            if delta:
                db.execute("UPDATE messages SET cum_tokens = cum_tokens + ? WHERE thread_id = ? AND seq > ?",
                           (delta, thread_id, row["seq"]))

    def delete(self, thread_id: str, message_id: str, *, items: bool = False) -> None:
        with self.db.write() as db:
            row = self.row(thread_id, message_id, items=items)
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            if row["n_tokens"]:
                db.execute("UPDATE messages SET cum_tokens = cum_tokens - ? WHERE thread_id = ? AND seq > ?",
                           (row["n_tokens"], thread_id, row["seq"]))

    def total_tokens(self, thread_id: str) -> int:
        """Tokens of the thread's finished messages, all of them (the running sum of its last one)."""
        row = self.db.query_one("SELECT cum_tokens FROM messages WHERE thread_id = ? AND status != 'in_progress' "
                                "ORDER BY seq DESC LIMIT 1", (thread_id,))
        return int(row["cum_tokens"]) if row else 0

    def end_unfinished(self, run_id: str, ts: int, reason: str) -> None:
        """A run ended while one of its messages was still being written: that message ends incomplete."""
        with self.db.write() as db:
            db.execute("UPDATE messages SET status = 'incomplete', incomplete_at = ?, incomplete_details = ? "
                       "WHERE run_id = ? AND status = 'in_progress'", (ts, json.dumps({"reason": reason}), run_id))

    def latest_text(self, thread_id: str, role: str = "user") -> str:
        """The text of the thread's newest message from `role` ("" when there is none)."""
        row = self.db.query_one("SELECT content FROM messages WHERE thread_id = ? AND role = ? ORDER BY seq DESC "
                                "LIMIT 1", (thread_id, role))
        return text_of(loads(row["content"])) if row else ""

    def page(self, thread_id: str, params: ListParams, run_id: str | None = None) -> Page[Message]:
        where, args = "thread_id = ? AND item IS NULL", (thread_id,)
        if run_id is not None:  # narrowed on the (thread_id, seq) index, then filtered
            args = (thread_id, run_id)  # type: ignore[assignment]
            where = "thread_id = ? AND run_id = ? AND item IS NULL"
        return paginate(self.db, "messages", params, to_message, where=where, args=args, column="seq")

    def page_items(self, thread_id: str, params: ListParams,
                   to_item: Callable[[dict[str, Any]], dict[str, Any]]) -> Page[dict[str, Any]]:
        """Every row of the thread, messages and other items alike, each made an item by `to_item` (its row, with
        `item` and the message fields decoded)."""
        return paginate(self.db, "messages", params, lambda row: to_item(_decoded(row)), where="thread_id = ?",
                        args=(thread_id,), column="seq", get_id=lambda item: str(item["id"]))


def _append(db: sqlite_utils.Database, thread_id: str,
            messages: Sequence[tuple[dict[str, Any], list[int] | None]]) -> None:
    """The rows of `messages` after the thread's last: each its seq and the running token sum (a message stored
    without tokens counts none until set_tokens), then the thread's next seq moved past them."""
    seq = db.execute("SELECT next_seq FROM threads WHERE id = ?", (thread_id,)).fetchone()
    if seq is None:
        raise NotFound("thread", thread_id)
    last = db.execute(
        "SELECT cum_tokens FROM messages WHERE thread_id = ? ORDER BY seq DESC LIMIT 1", (thread_id,)
    ).fetchone()
    next_seq, cum = seq[0], last[0] if last else 0
    rows = []
    for values, tokens in messages:
        n = len(tokens) if tokens is not None else 0
        cum += n
        row = {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()}
        row.update(seq=next_seq, n_tokens=n, cum_tokens=cum, tokens=pack(tokens) if tokens is not None else None)
        rows.append(row)
        next_seq += 1
    names = list(rows[0])
    db.conn.executemany(f"INSERT INTO messages ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                        [[row[k] for k in names] for row in rows])
    db.execute("UPDATE threads SET next_seq = ? WHERE id = ?", (next_seq, thread_id))
