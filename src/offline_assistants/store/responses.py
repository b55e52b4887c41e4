"""Responses: what the Responses face keeps beside the run that does a response's work (engine/responses.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from offline_assistants.errors import NotFound
from offline_assistants.store.db import Database, dumps, insert, loads


@dataclass(frozen=True)
class ResponseRecord:
    id: str
    created_at: int
    run_id: str
    thread_id: str
    conversation_id: str | None
    previous_response_id: str | None
    since_step: int  # the run's steps after this pk are this response's output (up to the next response's)
    input_seq: int  # the thread's last seq once this response's input was in
    until_step: int | None  # where the next response on the same run begins; None for the run's latest
    request: dict[str, Any]  # what the response echoes: model, instructions, tools, text, ...
    input: list[dict[str, Any]]  # its input items, each with its id
    store: bool
    background: bool


def _record(row: dict[str, Any], until: int | None) -> ResponseRecord:
    return ResponseRecord(row["id"], row["created_at"], row["run_id"], row["thread_id"], row["conversation_id"],
                          row["previous_response_id"], row["since_step"], row["input_seq"], until,
                          loads(row["request"]),
                          loads(row["input"]), bool(row["store"]), bool(row["background"]))


class ResponseStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def insert(self, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            insert(db, "responses", {k: (dumps(v) if k in ("request", "input") else v) for k, v in values.items()})

    def get(self, response_id: str) -> ResponseRecord:
        row = self.db.query_one("SELECT * FROM responses WHERE id = ?", (response_id,))
        if row is None:
            raise NotFound("response", response_id)
        after = self.db.query_one("SELECT since_step FROM responses WHERE run_id = ? AND pk > ? ORDER BY pk LIMIT 1",
                                  (row["run_id"], row["pk"]))
        return _record(row, after["since_step"] if after else None)

    def latest_on_thread(self, thread_id: str) -> str | None:
        row = self.db.query_one("SELECT id FROM responses WHERE thread_id = ? ORDER BY pk DESC LIMIT 1", (thread_id,))
        return row["id"] if row else None

    def on_run(self, run_id: str) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM responses WHERE run_id = ? ORDER BY pk", (run_id,))]

    def steps(self, run_id: str, since: int, until: int | None) -> list[dict[str, Any]]:
        """The run's steps with since < pk <= until, oldest first (rows, JSON decoded)."""
        sql = "SELECT * FROM run_steps WHERE run_id = ? AND pk > ?"
        args: tuple[Any, ...] = (run_id, since)
        if until is not None:
            sql, args = sql + " AND pk <= ?", (*args, until)
        rows = self.db.query(sql + " ORDER BY pk", args)
        for row in rows:
            row["step_details"] = loads(row["step_details"])
        return rows

    def step_pk(self, step_id: str) -> int:
        row = self.db.query_one("SELECT pk FROM run_steps WHERE id = ?", (step_id,))
        if row is None:
            raise NotFound("run step", step_id)
        return int(row["pk"])

    def last_step(self, run_id: str) -> int:
        row = self.db.query_one("SELECT max(pk) AS pk FROM run_steps WHERE run_id = ?", (run_id,))
        return int(row["pk"] or 0) if row else 0

    def delete(self, response_id: str) -> None:
        with self.db.write() as db:
            db.execute("DELETE FROM responses WHERE id = ?", (response_id,))

    def unkept(self, before: int) -> list[str]:
        """`store: false` responses made before `before` whose runs have stopped (ended, or waiting for outputs)."""
        rows = self.db.query("SELECT r.id FROM responses r JOIN runs u ON u.id = r.run_id WHERE r.store = 0 AND "
                             "r.created_at < ? AND u.status NOT IN ('queued', 'in_progress', 'cancelling')",
                             (before,))
        return [r["id"] for r in rows]

    def uses_thread(self, thread_id: str) -> int:
        row = self.db.query_one("SELECT count(*) AS n FROM responses WHERE thread_id = ?", (thread_id,))
        return int(row["n"]) if row else 0
