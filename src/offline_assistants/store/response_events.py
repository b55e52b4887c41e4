"""A background response's stream events (api/response_recording.py), kept so a stream can be resumed."""

from __future__ import annotations

from typing import Any

from offline_assistants.store.db import Database, dumps, loads


class ResponseEventStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def append(self, response_id: str, events: list[dict[str, Any]]) -> None:
        """Store events (each with its `sequence_number`). One already stored under a number stays as it was (two
        readers closing the same log write the same thing); a response deleted meanwhile keeps nothing."""
        if not events:
            return
        with self.db.write() as db:
            db.conn.executemany(
                "INSERT OR IGNORE INTO response_events (response_id, sequence_number, event) "
                "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM responses WHERE id = ?)",
                [(response_id, e["sequence_number"], dumps(e), response_id) for e in events])

    def after(self, response_id: str, sequence_number: int) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT event FROM response_events WHERE response_id = ? AND sequence_number > ? "
                             "ORDER BY sequence_number", (response_id, sequence_number))
        return [loads(row["event"]) for row in rows]

    def last(self, response_id: str) -> dict[str, Any] | None:
        """The last event stored for a response; None when none is."""
        row = self.db.query_one("SELECT event FROM response_events WHERE response_id = ? "
                                "ORDER BY sequence_number DESC LIMIT 1", (response_id,))
        return None if row is None else dict(loads(row["event"]))
