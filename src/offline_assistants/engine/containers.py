"""Containers: a code-interpreter kernel of one's own and its /mnt/data, as openai-python's `client.containers`
and `client.containers.files` see them, for the Responses API's code_interpreter.

A container is a session of the code runner keyed by the container's id: its kernel, and its working directory,
which is the container's /mnt/data (tools/code_interpreter). A container file is a row naming a file there; the
bytes are only ever in that directory, where the kernel reads and writes them. Files the code writes become
container files (source `assistant`) when `sync_files` looks.

As documented, a container expires after its idle minutes (20 unless `expires_after` says otherwise); every
operation on it (retrieving it, a file operation, running code in it) makes it active again. An expired container
keeps its metadata; its kernel is shut down and its files are discarded, and anything more asked of it gets the
real API's 400 "Container is expired.".
"""

from __future__ import annotations

import builtins
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from offline_assistants.config import Settings
from offline_assistants.engine.files import Files, safe_name, write_limited
from offline_assistants.errors import InvalidRequest, NotFound
from offline_assistants.ids import new_id, now
from offline_assistants.schemas.common import Deleted, ListParams, Page
from offline_assistants.schemas.containers import (
    DEFAULT_EXPIRY_MINUTES,
    DEFAULT_MEMORY_LIMIT,
    MEMORY_MB,
    MOUNT,
    Container,
    ContainerCreate,
    ContainerFile,
    ContainerFileCreate,
    ContainerListParams,
    FileSource,
    MemoryLimit,
    NetworkPolicyAllowlist,
)
from offline_assistants.store import Store
from offline_assistants.tools.code_interpreter.runner import CodeRunner
from offline_assistants.tools.code_interpreter.workdir import open_file, remove_file, snapshot


@dataclass(frozen=True)
class ContainerFileContent:
    """A container file's bytes, open for reading (the caller closes `stream`)."""

    file: ContainerFile
    filename: str
    size: int  # as the file is now: the code may have rewritten it since it was registered
    stream: BinaryIO


class Containers:
    def __init__(self, store: Store, settings: Settings, files: Files, runner: CodeRunner | None) -> None:
        self.store = store
        self.settings = settings
        self.files = files
        self.runner = runner
        # Where an upload is received whole before it is copied in (never straight into the directory the code
        # writes in); what is left here was an upload of a process that died mid-way.
        self._incoming = settings.data_dir / "container-uploads"
        shutil.rmtree(self._incoming, ignore_errors=True)
        self._incoming.mkdir(parents=True, exist_ok=True)

    # --- containers ---
    def create(self, req: ContainerCreate) -> Container:
        if req.skills:
            raise InvalidRequest("Skills are not available on this server: it has no skills to install offline.",
                                 param="skills", code="unsupported_value")
        if isinstance(req.network_policy, NetworkPolicyAllowlist):
            raise InvalidRequest("Network policy 'allowlist' is not available: this server runs offline and its "
                                 "containers have no network.", param="network_policy.type",
                                 code="unsupported_value")
        runner = self._runner()
        self.store.files.check_exists(req.file_ids, "file_ids")
        ts = now()
        container_id = new_id("container")
        memory_limit = req.memory_limit or DEFAULT_MEMORY_LIMIT
        minutes = req.expires_after.minutes if req.expires_after else DEFAULT_EXPIRY_MINUTES
        self.store.containers.insert({
            "id": container_id, "created_at": ts, "name": req.name, "status": "running", "last_active_at": ts,
            "expires_after_minutes": minutes, "memory_limit": memory_limit})
        runner.open_session(container_id, memory_mb=MEMORY_MB[memory_limit])
        for file_id in dict.fromkeys(req.file_ids):
            obj = self.files.get(file_id)
            self._put(container_id, safe_name(obj.filename), self.files.path(file_id), obj.bytes, "user")
        return self.store.containers.get(container_id)

    def auto(self, file_ids: Sequence[str] = (), *, memory_limit: MemoryLimit | None = None) -> Container:
        """The container a code_interpreter tool's `container: {"type": "auto", ...}` makes."""
        return self.create(ContainerCreate(name="auto", file_ids=list(file_ids), memory_limit=memory_limit))

    def get(self, container_id: str) -> Container:
        """The container; retrieving it makes it active again, as documented (or finds it expired)."""
        self._used(container_id)
        return self.store.containers.get(container_id)

    def list(self, params: ContainerListParams) -> Page[Container]:
        return self.store.containers.page(params, params.name)

    def delete(self, container_id: str) -> Deleted:
        self.store.containers.delete(container_id)
        self._discard(container_id)
        return Deleted(id=container_id, object="container.deleted")

    def session(self, container_id: str) -> str:
        """The code runner's session to run code in the container (CodeRunner.execute): the container is active
        again, and its kernel starts (if it must) under the container's memory limit. 400 once it has expired."""
        container = self._live(container_id)
        self._workdir(container)
        self._used(container.id)
        return container.id

    def expire(self, ts: int) -> builtins.list[str]:
        """End the containers idle past their minutes at `ts` (the engine's sweep calls this each second)."""
        ended = [c for c in self.store.containers.due(ts) if self.store.containers.expire(c, ts)]
        for container_id in ended:
            self._discard(container_id)
        return ended

    # --- files ---
    def upload_file(self, container_id: str, source: BinaryIO, filename: str) -> ContainerFile:
        """A file uploaded into the container, at /mnt/data/<its name>; a file already at that path is replaced."""
        container = self._live(container_id)
        received = self._incoming / new_id("container_file")
        try:
            size = write_limited(source, received, self.settings.max_file_bytes)
            return self._put(container.id, safe_name(filename), received, size, "user")
        finally:
            received.unlink(missing_ok=True)

    def add_file(self, container_id: str, req: ContainerFileCreate) -> ContainerFile:
        """A file of the Files API copied into the container, at /mnt/data/<its filename>."""
        container = self._live(container_id)
        try:
            obj = self.files.get(req.file_id)
        except NotFound:
            raise NotFound("file", req.file_id, param="file_id") from None
        return self._put(container.id, safe_name(obj.filename), self.files.path(req.file_id), obj.bytes, "user")

    def list_files(self, container_id: str, params: ListParams) -> Page[ContainerFile]:
        container = self._live(container_id)
        page = self.store.containers.file_page(container.id, params)
        self._used(container.id)
        return page

    def get_file(self, container_id: str, file_id: str) -> ContainerFile:
        container = self._live(container_id)
        file = self.store.containers.get_file(container.id, file_id)
        self._used(container.id)
        return file

    def delete_file(self, container_id: str, file_id: str) -> Deleted:
        container = self._live(container_id)
        row = self.store.containers.delete_file(container.id, file_id)
        remove_file(self._workdir(container), Path(row["disk_path"]))
        self._used(container.id)
        return Deleted(id=file_id, object="container.file.deleted")

    def open_content(self, container_id: str, file_id: str) -> ContainerFileContent:
        container = self._live(container_id)
        file = self.store.containers.get_file(container.id, file_id)
        disk_path = Path(self.store.containers.file_row(container.id, file_id)["disk_path"])
        try:
            stream = open_file(self._workdir(container), disk_path)
        except FileNotFoundError:  # the code removed it (or put something else there): the row goes too
            self.sync_files(container.id)
            raise NotFound("container file", file_id) from None
        self._used(container.id)
        return ContainerFileContent(file, disk_path.name, os.fstat(stream.fileno()).st_size, stream)

    def sync_files(self, container_id: str, written: Iterable[Path] = ()) -> builtins.list[ContainerFile]:
        """Bring the container's files in step with its /mnt/data after code ran there: files the code made are
        registered (source `assistant`), files it removed are dropped, sizes are brought up to date. Returns the
        files registered now and those among `written` (an execution's ExecutionResult.files): what a reply cites
        as container_file_citation. Nothing for a container that is not running."""
        container = self.store.containers.get(container_id)
        if container.status != "running":
            return []
        workdir = self._workdir(container)
        known = self.store.containers.known(container.id)
        found = {_mounted(rel): (workdir / rel, sig[1]) for rel, sig in snapshot(workdir).items()}
        ts = now()
        added = [self._row(container.id, path, disk, size, "assistant", ts)
                 for path, (disk, size) in found.items() if path not in known]
        sizes = {k.id: found[path][1] for path, k in known.items() if path in found and found[path][1] != k.bytes}
        gone = [k.id for path, k in known.items() if path not in found]
        self.store.containers.sync(container.id, added, sizes, gone)
        wanted = [row["path"] for row in added]
        wanted += [_mounted(os.path.relpath(p, workdir)) for p in written if Path(p).is_relative_to(workdir)]
        now_known = self.store.containers.known(container.id)
        ids = [now_known[path].id for path in dict.fromkeys(wanted) if path in now_known]
        return [self.store.containers.get_file(container.id, file_id) for file_id in ids]

    def cite(self, container_id: str, path: Path) -> dict[str, Any]:
        """A file the code wrote in the container, registered, as the `container_file_citation` that cites it
        (less its place in the text, which the answer gives it)."""
        files = self.sync_files(container_id, [path])
        wanted = _mounted(os.path.relpath(path, self._workdir(self.store.containers.get(container_id))))
        file = next((f for f in files if f.path == wanted), None)
        return {"type": "container_file_citation", "container_file_citation": {
            "container_id": container_id, "file_id": file.id if file else "", "filename": path.name}}

    # --- inside ---
    def _runner(self) -> CodeRunner:
        if self.runner is None:
            raise InvalidRequest("The code interpreter is turned off on this server (serve --no-code-interpreter), "
                                 "so it runs no containers.", code="unsupported_value")
        return self.runner

    def _live(self, container_id: str) -> Container:
        """The container an operation is about to use; 400 once it has expired, as the real API answers. Nothing
        is written (a refused request changes nothing), unless its minutes ran out: then it expires now."""
        if self.store.containers.expire(container_id, now()):
            self._discard(container_id)
        container = self.store.containers.get(container_id)
        if container.status != "running":
            raise InvalidRequest("Container is expired.")
        return container

    def _used(self, container_id: str) -> None:
        """An operation on the container succeeded: it is active again."""
        if self.store.containers.touch(container_id, now()):
            self._discard(container_id)

    def _workdir(self, container: Container) -> Path:
        """The container's /mnt/data on disk, its kernel capped at the container's memory limit."""
        return self._runner().open_session(container.id, memory_mb=MEMORY_MB[container.memory_limit])

    def _discard(self, container_id: str) -> None:
        if self.runner is not None:
            self.runner.shutdown(container_id, remove_files=True)

    def _put(self, container_id: str, name: str, source: Path, size: int, origin: FileSource) -> ContainerFile:
        runner = self._runner()
        runner.add_files(container_id, {name: source})
        workdir = runner.open_session(container_id)
        file = self.store.containers.insert_file(
            self._row(container_id, _mounted(name), workdir / name, size, origin, now()))
        self._used(container_id)
        return file

    @staticmethod
    def _row(container_id: str, path: str, disk: Path, size: int, origin: FileSource, ts: int) -> dict[str, Any]:
        return {"id": new_id("container_file"), "container_id": container_id, "created_at": ts, "path": path,
                "bytes": size, "source": origin, "disk_path": str(disk)}


def _mounted(relative: str) -> str:
    """Where the code sees a file of its working directory."""
    return f"{MOUNT}/{relative.replace(os.sep, '/')}"
