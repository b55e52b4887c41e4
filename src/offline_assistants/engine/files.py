"""Uploaded and generated files: bytes on disk under the data directory, metadata in SQLite."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from offline_assistants.config import Settings
from offline_assistants.errors import InvalidRequest, PayloadTooLarge
from offline_assistants.ids import new_id, now
from offline_assistants.schemas.common import Deleted, ListParams, Page
from offline_assistants.schemas.files import UPLOAD_PURPOSES, FileObject
from offline_assistants.store import Store

CHUNK = 1 << 20
_FILE_ID = re.compile(r"file-[A-Za-z0-9]{24}")


class Files:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._remove_strays()

    def _remove_strays(self) -> None:
        """At start-up: bytes no row names. A file's bytes are written before its row, so a process killed in
        between (mid-upload, mid-completion of an Upload) leaves them behind, and nothing else would ever
        remove them. Only names shaped as file ids are touched."""
        known = self.store.files.ids()
        for path in self.settings.files_dir.iterdir():
            if _FILE_ID.fullmatch(path.name) and path.name not in known and path.is_file():
                path.unlink(missing_ok=True)

    def upload(self, source: BinaryIO | Iterable[bytes], filename: str, purpose: str) -> FileObject:
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidRequest(
                f"Invalid value for 'purpose': '{purpose}'. Supported values are: "
                + ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES) + ".",
                param="purpose", code="invalid_value",
            )
        return self._store(source, safe_name(filename), purpose)

    def create_output(self, data: bytes, filename: str) -> FileObject:
        """A file made by a tool (a plot, a file the code wrote): purpose `assistants_output`."""
        return self._store([data], safe_name(filename), "assistants_output")

    def _store(self, source: BinaryIO | Iterable[bytes], filename: str, purpose: str) -> FileObject:
        file_id = new_id("file")
        path = self.settings.files_dir / file_id
        try:
            size = write_limited(source, path, self.settings.max_file_bytes)
            return self.store.files.insert({
                "id": file_id, "created_at": now(), "bytes": size, "filename": filename, "purpose": purpose,
                "status": "processed", "path": str(path),
            })
        except BaseException:
            # Too large, a broken upload, or the row could not be stored: leave no orphan bytes on disk.
            path.unlink(missing_ok=True)
            raise

    def get(self, file_id: str) -> FileObject:
        return self.store.files.get(file_id)

    def path(self, file_id: str) -> Path:
        return Path(self.store.files.row(file_id)["path"])

    def delete(self, file_id: str) -> Deleted:
        row = self.store.files.delete(file_id)
        Path(row["path"]).unlink(missing_ok=True)
        return Deleted(id=file_id, object="file")

    def list(self, params: ListParams, purpose: str | None) -> Page[FileObject]:
        return self.store.files.page(params, purpose)


def safe_name(filename: str) -> str:
    """A file's name as stored: its last path part, without control characters (NUL among them), at most 255
    characters. Never a path: what a name says cannot choose where bytes go."""
    name = "".join(c for c in filename if c.isprintable()).replace("\\", "/")
    name = os.path.basename(name).strip()
    return name[:255] if name not in ("", ".", "..") else "file"


def write_limited(source: BinaryIO | Iterable[bytes], path: Path, limit: int) -> int:
    """Write the bytes to `path`, refusing (413) past `limit`; returns the size. The caller removes `path` when
    this raises."""
    size = 0
    chunks = iter(lambda: source.read(CHUNK), b"") if hasattr(source, "read") else iter(source)
    with open(path, "wb") as out:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"File is too large: the maximum size is {limit} bytes.", param="file",
                                      code="file_too_large")
            out.write(chunk)
    return size
