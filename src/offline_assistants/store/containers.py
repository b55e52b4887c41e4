"""Containers and the files in them: the rows only; a file's bytes lie at its `disk_path`, in the container's
working directory (engine/containers.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from offline_assistants.errors import NotFound
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.containers import Container, ContainerFile, ExpiresAfterObject
from offline_assistants.store.db import Database, insert
from offline_assistants.store.pagination import paginate

_DUE = "status = 'running' AND last_active_at + expires_after_minutes * 60 <= ?"


def to_container(row: dict[str, Any]) -> Container:
    return Container(id=row["id"], created_at=row["created_at"], name=row["name"], status=row["status"],
                     expires_after=ExpiresAfterObject(minutes=row["expires_after_minutes"]),
                     last_active_at=row["last_active_at"], memory_limit=row["memory_limit"])


def to_file(row: dict[str, Any]) -> ContainerFile:
    return ContainerFile(**{k: row[k] for k in ("id", "bytes", "container_id", "created_at", "path", "source")})


@dataclass(frozen=True)
class KnownFile:
    """A file row as a sync of the container's directory compares it: its id, where it lies, its size."""

    id: str
    disk_path: str
    bytes: int


class ContainerStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    # --- containers ---
    def insert(self, values: dict[str, Any]) -> None:
        with self.db.write() as db:
            insert(db, "containers", values)

    def row(self, container_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM containers WHERE id = ?", (container_id,))
        if row is None:
            raise NotFound("container", container_id)
        return row

    def get(self, container_id: str) -> Container:
        return to_container(self.row(container_id))

    def page(self, params: ListParams, name: str | None) -> Page[Container]:
        if name is not None:
            return paginate(self.db, "containers", params, to_container, where="name = ?", args=(name,))
        return paginate(self.db, "containers", params, to_container)

    def touch(self, container_id: str, ts: int) -> bool:
        """An operation on the container at `ts`: a running one is active again, unless its minutes ran out
        before, which expires it instead (then True: its kernel and files are the caller's to discard). One
        transaction, so of an operation and the expiry sweep exactly one wins."""
        with self.db.write() as db:
            row = self.row(container_id)
            if row["status"] == "running" and self._due(container_id, ts):
                self._mark_expired(db, container_id)
                return True
            if row["status"] == "running":
                db.execute("UPDATE containers SET last_active_at = ? WHERE id = ?", (ts, container_id))
        return False

    def due(self, ts: int) -> list[str]:
        return [r["id"] for r in self.db.query(f"SELECT id FROM containers WHERE {_DUE}", (ts,))]

    def expire(self, container_id: str, ts: int) -> bool:
        """Mark the container expired and forget its files, if it is still past its minutes at `ts`."""
        with self.db.write() as db:
            if not self._due(container_id, ts):
                return False
            self._mark_expired(db, container_id)
            return True

    def _due(self, container_id: str, ts: int) -> bool:
        return self.db.query_one(f"SELECT 1 AS x FROM containers WHERE id = ? AND {_DUE}",
                                 (container_id, ts)) is not None

    @staticmethod
    def _mark_expired(db: sqlite_utils.Database, container_id: str) -> None:
        db.execute("UPDATE containers SET status = 'expired' WHERE id = ?", (container_id,))
        db.execute("DELETE FROM container_files WHERE container_id = ?", (container_id,))

    def delete(self, container_id: str) -> None:
        with self.db.write() as db:
            self.row(container_id)
            db.execute("DELETE FROM container_files WHERE container_id = ?", (container_id,))
            db.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    # --- files ---
    def insert_file(self, values: dict[str, Any]) -> ContainerFile:
        """A file at a path: one already there is replaced (the bytes on disk were overwritten already)."""
        with self.db.write() as db:
            db.execute("DELETE FROM container_files WHERE container_id = ? AND path = ?",
                       (values["container_id"], values["path"]))
            insert(db, "container_files", values)
        return self.get_file(values["container_id"], values["id"])

    def file_row(self, container_id: str, file_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM container_files WHERE id = ? AND container_id = ?",
                                (file_id, container_id))
        if row is None:
            raise NotFound("container file", file_id)
        return row

    def get_file(self, container_id: str, file_id: str) -> ContainerFile:
        return to_file(self.file_row(container_id, file_id))

    def file_page(self, container_id: str, params: ListParams) -> Page[ContainerFile]:
        return paginate(self.db, "container_files", params, to_file, where="container_id = ?", args=(container_id,))

    def delete_file(self, container_id: str, file_id: str) -> dict[str, Any]:
        with self.db.write() as db:
            row = self.file_row(container_id, file_id)
            db.execute("DELETE FROM container_files WHERE id = ?", (file_id,))
        return row

    def known(self, container_id: str) -> dict[str, KnownFile]:
        """The container's files by path."""
        rows = self.db.query("SELECT id, path, disk_path, bytes FROM container_files WHERE container_id = ?",
                             (container_id,))
        return {r["path"]: KnownFile(r["id"], r["disk_path"], r["bytes"]) for r in rows}

    def sync(self, container_id: str, added: list[dict[str, Any]], sizes: dict[str, int], gone: list[str]) -> None:
        """What a look at the container's directory found, in one transaction: files to add (rows), new sizes of
        known files (by id), files no longer there (ids). Nothing happens to a container that expired meanwhile."""
        with self.db.write() as db:
            if self.row(container_id)["status"] != "running":
                return
            for values in added:  # unless an upload took the path since the look
                if self.db.query_one("SELECT 1 AS x FROM container_files WHERE container_id = ? AND path = ?",
                                     (container_id, values["path"])) is None:
                    insert(db, "container_files", values)
            for file_id, size in sizes.items():
                db.execute("UPDATE container_files SET bytes = ? WHERE id = ?", (size, file_id))
            for file_id in gone:
                db.execute("DELETE FROM container_files WHERE id = ?", (file_id,))
