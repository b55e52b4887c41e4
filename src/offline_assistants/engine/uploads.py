"""Uploads: a file sent in parts, joined into an ordinary File (engine/files.py) on completion.

A part's bytes go to disk under the data directory (`uploads/<upload id>/<part id>`), its row to SQLite. Every
rule is checked again under the write lock when the row is written, so parts sent in parallel cannot overrun the
declared size, and no part lands on an upload that was cancelled, completed or expired meanwhile. A completion
claims the upload first (it stays `pending` to clients, but takes no more parts and cannot be cancelled or
expire while its bytes are being joined); a failed one releases the claim and leaves the upload as it was.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from offline_assistants.config import Settings
from offline_assistants.engine.files import CHUNK, Files
from offline_assistants.errors import APIError, InvalidRequest, NotFound, PayloadTooLarge
from offline_assistants.ids import new_id, now
from offline_assistants.schemas.files import UPLOAD_PURPOSES
from offline_assistants.schemas.uploads import Upload, UploadComplete, UploadCreate, UploadPart
from offline_assistants.store import Store

PART_MAX_BYTES = 64 * 1024 * 1024  # the real API's limit on one part (the SDK's default part size)
EXPIRY_S = 3600  # an upload expires an hour after it is created, as the real API's


class Uploads:
    def __init__(self, store: Store, settings: Settings, files: Files) -> None:
        self.store = store
        self.settings = settings
        self.files = files
        self.part_max_bytes = PART_MAX_BYTES
        self.dir = settings.data_dir / "uploads"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store.uploads.release_claims()
        self._expire()
        self._remove_strays()

    def create(self, req: UploadCreate) -> Upload:
        self._expire()
        if req.purpose not in UPLOAD_PURPOSES:
            raise InvalidRequest(
                f"Invalid value for 'purpose': '{req.purpose}'. Supported values are: "
                + ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES) + ".",
                param="purpose", code="invalid_value",
            )
        limit = self.settings.max_file_bytes
        if req.bytes > limit:
            raise PayloadTooLarge(f"File is too large: the maximum size is {limit} bytes.", param="bytes",
                                  code="file_too_large")
        ts = now()
        return self.store.uploads.insert({
            "id": new_id("upload"), "created_at": ts, "expires_at": ts + EXPIRY_S, "bytes": req.bytes,
            "filename": req.filename, "purpose": req.purpose, "mime_type": req.mime_type, "status": "pending",
        })

    def add_part(self, upload_id: str, source: BinaryIO) -> UploadPart:
        self._expire()
        declared = self._pending(upload_id, "add a part")["bytes"]
        part_id = new_id("upload_part")
        directory = self.dir / upload_id
        directory.mkdir(exist_ok=True)
        path = directory / part_id
        size = 0
        try:
            try:
                target = open(path, "wb")
            except FileNotFoundError:  # the directory went with a cancel or an expiry just now: say which
                self._pending(upload_id, "add a part")
                raise
            with target as out:
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    size += len(chunk)
                    self._check_part_size(size)
                    if size > declared:
                        raise self._overrun(upload_id, declared)
                    out.write(chunk)
            with self.store.database.write():
                self._pending(upload_id, "add a part")  # again: a cancel, a completion or the hour may have come
                if self.store.uploads.received(upload_id) + size > declared:
                    raise self._overrun(upload_id, declared)
                return self.store.uploads.insert_part({
                    "id": part_id, "upload_id": upload_id, "created_at": now(), "bytes": size, "path": str(path),
                })
        except BaseException:
            path.unlink(missing_ok=True)
            _remove_if_empty(directory)
            raise

    def check_part_length(self, content_length: int) -> None:
        """Refuse a part from its request's length, before its bytes are read (room for the form's own bytes)."""
        if content_length > self.part_max_bytes + CHUNK:
            self._check_part_size(content_length)

    def complete(self, upload_id: str, req: UploadComplete) -> Upload:
        self._expire()
        with self.store.database.write():
            row = self._pending(upload_id, "complete")
            parts = {p["id"]: p for p in self.store.uploads.parts(upload_id)}
            seen: set[str] = set()
            for part_id in req.part_ids:
                if part_id not in parts:
                    raise NotFound("part", part_id, param="part_ids")
                if part_id in seen:
                    raise InvalidRequest(f"Invalid 'part_ids': part '{part_id}' is listed more than once.",
                                         param="part_ids", code="invalid_value")
                seen.add(part_id)
            total = sum(parts[p]["bytes"] for p in req.part_ids)
            if total != row["bytes"]:
                raise InvalidRequest(
                    f"The parts given add up to {total} bytes, but upload '{upload_id}' was created with "
                    f"bytes={row['bytes']}: they must match.", param="part_ids", code="invalid_value")
            self.store.uploads.update(upload_id, {"claimed": 1})
        try:
            chunks = self._joined([Path(parts[p]["path"]) for p in req.part_ids], req.md5)
            file = self.files.upload(chunks, row["filename"], row["purpose"])
        except BaseException:
            self.store.uploads.update(upload_id, {"claimed": 0})  # as it was: the parts stay, still pending
            raise
        try:
            self.store.uploads.end(upload_id, {"status": "completed", "file_id": file.id, "claimed": 0})
        except BaseException:
            self.files.delete(file.id)
            self.store.uploads.update(upload_id, {"claimed": 0})
            raise
        self._remove_bytes(upload_id)
        return self.store.uploads.get(upload_id)

    def cancel(self, upload_id: str) -> Upload:
        self._expire()
        with self.store.database.write():
            self._pending(upload_id, "cancel")
            self.store.uploads.end(upload_id, {"status": "cancelled"})
        self._remove_bytes(upload_id)
        return self.store.uploads.get(upload_id)

    # --- rules ---------------------------------------------------------------------------------------------------

    def _pending(self, upload_id: str, action: str) -> dict[str, Any]:
        """The upload's row, if it still takes `action`; read inside a write, the answer holds until it ends."""
        row = self.store.uploads.row(upload_id)
        status = row["status"]
        if status == "pending" and row["expires_at"] <= now() and not row["claimed"]:
            status = "expired"  # the hour is up; the next sweep writes it
        if status != "pending":
            raise InvalidRequest(f"Cannot {action} upload '{upload_id}': it is already {status}.")
        if row["claimed"]:
            raise InvalidRequest(f"Cannot {action} upload '{upload_id}': it is being completed.")
        return row

    def _check_part_size(self, size: int) -> None:
        if size > self.part_max_bytes:
            raise PayloadTooLarge(
                f"Part is too large: a part can be at most {self.part_max_bytes} bytes.", param="data",
                code="file_too_large")

    def _overrun(self, upload_id: str, declared: int) -> InvalidRequest:
        return InvalidRequest(
            f"Adding this part would take upload '{upload_id}' past the {declared} bytes it was created with.",
            param="data", code="invalid_value")

    def _joined(self, paths: list[Path], md5: str | None) -> Iterator[bytes]:
        """The parts' bytes in the order given; raising at the end when they do not have the md5 given, which
        Files.upload answers by removing what it wrote."""
        digest = hashlib.md5(usedforsecurity=False)
        for path in paths:
            try:
                source = open(path, "rb")
            except FileNotFoundError:
                raise APIError(f"The bytes of part '{path.name}' are missing from the server's storage.") from None
            with source:
                for chunk in iter(partial(source.read, CHUNK), b""):
                    digest.update(chunk)
                    yield chunk
        if md5 is not None and digest.hexdigest() != md5.strip().lower():
            raise InvalidRequest(
                f"The md5 checksum given, '{md5}', does not match the uploaded bytes' ({digest.hexdigest()}).",
                param="md5", code="invalid_value")

    # --- bytes on disk -------------------------------------------------------------------------------------------

    def _expire(self) -> None:
        for upload_id in self.store.uploads.expire(now()):
            self._remove_bytes(upload_id)

    def _remove_bytes(self, upload_id: str) -> None:
        shutil.rmtree(self.dir / upload_id, ignore_errors=True)

    def _remove_strays(self) -> None:
        """At start-up: bytes no row names (a process that stopped mid-part, an upload that ended meanwhile)."""
        pending = self.store.uploads.pending_ids()
        for directory in self.dir.iterdir():
            if directory.name not in pending:
                if directory.is_dir():
                    shutil.rmtree(directory, ignore_errors=True)
                else:
                    directory.unlink(missing_ok=True)
                continue
            known = {p["id"] for p in self.store.uploads.parts(directory.name)}
            for path in directory.iterdir():
                if path.name not in known:
                    path.unlink(missing_ok=True)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass  # other parts are there, or it is already gone
