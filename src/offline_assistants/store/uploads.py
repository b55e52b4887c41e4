from __future__ import annotations

from typing import Any

from offline_assistants.errors import NotFound
from offline_assistants.schemas.uploads import Upload, UploadPart
from offline_assistants.store.db import Database, insert, update
from offline_assistants.store.files import to_file


def to_part(row: dict[str, Any]) -> UploadPart:
    return UploadPart(**{k: row[k] for k in ("id", "created_at", "upload_id")})


class UploadStore:
    """Uploads and their parts: the rows only; a part's bytes lie in the file its `path` names."""

    def __init__(self, database: Database) -> None:
        self.db = database

    def insert(self, values: dict[str, Any]) -> Upload:
        with self.db.write() as db:
            insert(db, "uploads", values)
        return self.get(values["id"])

    def row(self, upload_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
        if row is None:
            raise NotFound("upload", upload_id)
        return row

    def get(self, upload_id: str) -> Upload:
        row = self.row(upload_id)
        file = None
        if row["file_id"] is not None:
            found = self.db.query_one("SELECT * FROM files WHERE id = ?", (row["file_id"],))
            file = to_file(found) if found is not None else None
        return Upload(file=file, **{k: row[k] for k in (
            "id", "bytes", "created_at", "expires_at", "filename", "purpose", "status")})

    def update(self, upload_id: str, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            self.row(upload_id)
            update(db, "uploads", upload_id, values)

    def insert_part(self, values: dict[str, Any]) -> UploadPart:
        with self.db.write() as db:
            insert(db, "upload_parts", values)
        return to_part(values)

    def parts(self, upload_id: str) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM upload_parts WHERE upload_id = ? ORDER BY pk", (upload_id,))

    def received(self, upload_id: str) -> int:
        row = self.db.query_one("SELECT COALESCE(SUM(bytes), 0) AS n FROM upload_parts WHERE upload_id = ?",
                                (upload_id,))
        return int(row["n"]) if row else 0

    def end(self, upload_id: str, values: dict[str, Any]) -> None:
        """Write the upload's ending (`status` and the rest) and forget its parts, in one transaction."""
        with self.db.write() as db:
            self.update(upload_id, values)
            db.execute("DELETE FROM upload_parts WHERE upload_id = ?", (upload_id,))

    def expire(self, ts: int) -> list[str]:
        """End every pending upload whose hour is up and that no completion holds; return their ids."""
        with self.db.write():
            ids = [r["id"] for r in self.db.query(
                "SELECT id FROM uploads WHERE status = 'pending' AND expires_at <= ? AND claimed = 0", (ts,))]
            for upload_id in ids:
                self.end(upload_id, {"status": "expired"})
        return ids

    def pending_ids(self) -> set[str]:
        return {r["id"] for r in self.db.query("SELECT id FROM uploads WHERE status = 'pending'")}

    def release_claims(self) -> None:
        """At start-up: no completion outlives the process that was making it."""
        with self.db.write() as db:
            db.execute("UPDATE uploads SET claimed = 0 WHERE claimed != 0")
