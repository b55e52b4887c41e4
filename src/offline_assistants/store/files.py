from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_assistants.errors import NotFound
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.files import FileObject
from offline_assistants.store.db import Database, insert, loads
from offline_assistants.store.pagination import paginate


def to_file(row: dict[str, Any]) -> FileObject:
    return FileObject(**{k: row[k] for k in ("id", "bytes", "created_at", "filename", "purpose", "status")})


class FileStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def insert(self, values: dict[str, Any]) -> FileObject:
        with self.db.write() as db:
            insert(db, "files", values)
        return self.get(values["id"])

    def row(self, file_id: str) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM files WHERE id = ?", (file_id,))
        if row is None:
            raise NotFound("file", file_id)
        return row

    def get(self, file_id: str) -> FileObject:
        return to_file(self.row(file_id))

    def ids(self) -> set[str]:
        return {r["id"] for r in self.db.query("SELECT id FROM files")}

    def delete(self, file_id: str) -> dict[str, Any]:
        with self.db.write() as db:
            row = self.row(file_id)
            db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return row

    def page(self, params: ListParams, purpose: str | None) -> Page[FileObject]:
        if purpose:
            return paginate(self.db, "files", params, to_file, where="purpose = ?", args=(purpose,))
        return paginate(self.db, "files", params, to_file)

    def code_inputs(self, assistant_id: str, thread_id: str, run_resources: dict[str, Any] | None
                    ) -> dict[str, Path]:
        """The files a run's code may read, by filename: code_interpreter file_ids of the assistant, the thread
        and the run, and files attached to the thread's messages for code_interpreter."""
        ids: list[str] = []
        assistant = self.db.query_one("SELECT tool_resources FROM assistants WHERE id = ?", (assistant_id,))
        thread = self.db.query_one("SELECT tool_resources FROM threads WHERE id = ?", (thread_id,))
        for resources in (assistant["tool_resources"] if assistant else None,
                          thread["tool_resources"] if thread else None, run_resources):
            decoded = loads(resources) if isinstance(resources, str) else resources
            ids += ((decoded or {}).get("code_interpreter") or {}).get("file_ids", [])
        for row in self.db.query("SELECT attachments FROM messages WHERE thread_id = ? AND attachments != '[]'",
                                 (thread_id,)):
            for attachment in loads(row["attachments"]):
                if any(t.get("type") == "code_interpreter" for t in attachment.get("tools", [])):
                    ids.append(attachment["file_id"])
        files: dict[str, Path] = {}
        for file_id in dict.fromkeys(ids):
            found = self.db.query_one("SELECT filename, path FROM files WHERE id = ?", (file_id,))
            if found is not None:
                files[found["filename"]] = Path(found["path"])
        return files

    def filename(self, file_id: str) -> str:
        """The file's name, or "" once the file itself was deleted (a vector store may still hold its chunks)."""
        row = self.db.query_one("SELECT filename FROM files WHERE id = ?", (file_id,))
        return str(row["filename"]) if row else ""

    def check_exists(self, file_ids: list[str], param: str) -> None:
        for file_id in file_ids:
            if self.db.query_one("SELECT 1 AS x FROM files WHERE id = ?", (file_id,)) is None:
                raise NotFound("file", file_id, param=param)

    def check_tool_resources(self, resources: Any) -> None:
        if resources.code_interpreter is not None:
            self.check_exists(resources.code_interpreter.file_ids, "tool_resources.code_interpreter.file_ids")
        search = resources.file_search
        if search is not None:
            for store_id in search.vector_store_ids:
                if self.db.query_one("SELECT 1 AS x FROM vector_stores WHERE id = ?", (store_id,)) is None:
                    raise NotFound("vector store", store_id, param="tool_resources.file_search.vector_store_ids")
            for i, inline in enumerate(search.vector_stores or []):
                self.check_exists(inline.file_ids, f"tool_resources.file_search.vector_stores[{i}].file_ids")
