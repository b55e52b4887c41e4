"""`offline-assistants doctor`: checks an installation the way `serve` would use it, and says what to do.

Each check is a small function of the Settings that yields Results (ok, warn or fail, what it found, and for a
problem the fix in one sentence); `run` prints them as they come and returns the exit status: 1 when something a
user needs is broken (a fail), else 0. Warnings are things that work but should be known (no sandbox in auto).
The cheap checks come first and the model last, since loading it takes seconds.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from offline_assistants.config import Settings
from offline_assistants.launch import SCRIPTED, LaunchError, open_code_runner, open_local_model

Status = Literal["ok", "warn", "fail"]
MIB = 1024 * 1024
LOW_DISK_BYTES = 1024 * MIB
BIG_WAL_BYTES = 256 * MIB
SLOW_KERNEL_S = 10.0


@dataclass(frozen=True)
class Result:
    name: str
    status: Status
    message: str
    fix: str = ""  # one sentence, for warn and fail


Check = Callable[[Settings], Iterable[Result]]


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024 * MIB), ("MB", MIB), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(directory: Path) -> str:
    """"" when a file can be made in `directory`, else why not (os.access lies for root and on read-only mounts)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return ""
    except OSError as exc:
        return exc.strerror or str(exc)


def check_data_dir(settings: Settings) -> Iterator[Result]:
    data = settings.data_dir
    if not data.exists():
        parent = _existing_parent(data)
        why = _writable(parent)
        if why:
            yield Result("data dir", "fail", f"{data} does not exist and cannot be made in {parent} ({why})",
                         f"Pass --data-dir a folder you can write to, or create {data} and give it to this user.")
        else:
            yield Result("data dir", "ok", f"{data} does not exist yet; serve creates it")
        return
    if not data.is_dir():
        yield Result("data dir", "fail", f"{data} is not a directory", "Pass --data-dir a folder, not a file.")
        return
    for directory in (data, settings.files_dir, settings.sandbox_dir):
        why = _writable(directory) if directory.is_dir() else ""
        if why:
            yield Result("data dir", "fail", f"cannot write in {directory} ({why})",
                         f"Give {directory} to the user that runs the server (chown -R {os.getuid()} {data}).")
            return
    mode = data.stat().st_mode & 0o777
    if mode & 0o022:
        yield Result("data dir", "warn", f"{data} is writable by other users (mode {mode:o})",
                     f"Run `chmod go-w {data}` so no one else can change the database or files.")
    else:
        free = shutil.disk_usage(data).free
        if free < LOW_DISK_BYTES:
            yield Result("data dir", "warn", f"{data}: only {_size(free)} free on its disk",
                         "Free some disk space or move --data-dir to a bigger disk.")
        else:
            yield Result("data dir", "ok", f"{data} (writable, mode {mode:o}, {_size(free)} free)")


def check_database(settings: Settings) -> Iterator[Result]:
    from offline_assistants.store.health import inspect

    path = settings.database
    if not path.exists():
        yield Result("database", "ok", f"{path} does not exist yet; serve creates it")
        return
    health = inspect(path)
    if not health.is_sqlite:
        yield Result("database", "fail", f"{path} is not an SQLite database ({_size(health.bytes)})",
                     f"Move {path} aside (or pass --db the right file): serve would refuse to open it.")
    elif health.error:
        yield Result("database", "fail", f"{path} cannot be read: {health.error}",
                     "Check that the file and its folder belong to this user, and that no process holds it locked.")
    elif health.integrity != "ok":
        yield Result("database", "fail", f"{path} fails SQLite's integrity check: {health.integrity}",
                     f"Stop the server and recover it: `sqlite3 {path} .recover | sqlite3 recovered.db`.")
    elif health.unknown:
        yield Result("database", "warn", f"{path} was written by a newer offline-assistants "
                     f"(migrations unknown here: {', '.join(health.unknown)})",
                     "Upgrade offline-assistants, or pass --db a database of this version.")
    elif health.wal_bytes > BIG_WAL_BYTES:
        yield Result("database", "warn", f"{path}: its WAL has grown to {_size(health.wal_bytes)}",
                     f"Stop the server and run `sqlite3 {path} 'PRAGMA wal_checkpoint(TRUNCATE)'`.")
    else:
        pending = f", {len(health.pending)} migrations for serve to apply" if health.pending else ""
        yield Result("database", "ok", f"{path} (integrity ok in {health.check_s:.2f} s, journal "
                     f"{health.journal_mode}, {_size(health.bytes)} + WAL {_size(health.wal_bytes)}{pending})")


def _ours(host: str, port: int) -> bool:
    """Whether an OpenAI-compatible server (offline-assistants already running, most likely) answers there."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/v1/models", timeout=2) as reply:
            return json.load(reply).get("object") == "list"
    except Exception:  # anything else listening there: not ours
        return False


def check_port(settings: Settings) -> Iterator[Result]:
    host, port = settings.host, settings.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
            yield Result("port", "ok", f"{host}:{port} is free")
            return
        except OSError as exc:
            failure = exc
    if failure.errno == errno.EADDRINUSE and _ours(host, port):
        yield Result("port", "ok", f"{host}:{port} is served by a running OpenAI-compatible server (this one?)")
    elif failure.errno == errno.EADDRINUSE:
        yield Result("port", "fail", f"{host}:{port} is in use by another program",
                     f"Stop the program listening on {port} (`ss -ltnp 'sport = :{port}'` names it) or pass --port.")
    elif failure.errno == errno.EACCES:
        yield Result("port", "fail", f"{host}:{port} needs privileges to bind",
                     "Pass --port 1024 or higher.")
    else:
        yield Result("port", "fail", f"cannot listen on {host}:{port}: {failure.strerror}",
                     "Pass --host an address of this machine (127.0.0.1, or 0.0.0.0 for every interface).")


def check_sandbox(settings: Settings) -> Iterator[Result]:
    from offline_assistants.tools.code_interpreter.sandbox import detection

    if settings.code_sandbox == "off":
        yield Result("sandbox", "warn", "--code-sandbox off: kernels run as this user, with its files and network",
                     "Drop --code-sandbox off to sandbox them where bubblewrap works.")
        return
    found = detection.detect()
    if found.bwrap is not None:
        yield Result("sandbox", "ok", f"{found.bwrap.describe()}: kernels see only their thread's files, no network")
        return
    status: Status = "fail" if settings.code_sandbox == "required" else "warn"
    yield Result("sandbox", status, f"no sandbox works here ({found.reason}); kernels would run as this user",
                 detection.FIX[0].upper() + detection.FIX[1:] + ".")


def check_kernel(settings: Settings) -> Iterator[Result]:
    where = Path(tempfile.mkdtemp(prefix="oa-doctor-"))
    try:
        runner = open_code_runner(settings, root=where)
    except LaunchError:
        yield Result("kernel", "fail", "not started: --code-sandbox required and no sandbox works",
                     "Fix the sandbox (above), or pass --code-sandbox auto.")
        shutil.rmtree(where, ignore_errors=True)
        return
    try:
        start = time.monotonic()
        first = runner.execute("doctor", "pass")
        started = time.monotonic() - start
        start = time.monotonic()
        second = runner.execute("doctor", "print(6 * 7)")
        executed = time.monotonic() - start
    finally:
        runner.close()
        shutil.rmtree(where, ignore_errors=True)
    how = "sandboxed" if runner.bwrap is not None else "unsandboxed"
    if first.error or second.error or second.logs != "42\n":
        said = (first.logs or second.logs)[-300:]
        yield Result("kernel", "fail", f"the Python kernel did not run code ({how}): {said}",
                     "Reinstall the package's Python dependencies (`pip install --force-reinstall ipykernel`).")
    elif started > SLOW_KERNEL_S:
        yield Result("kernel", "warn", f"starts in {started:.1f} s ({how}), executes in {executed * 1000:.0f} ms",
                     "A thread's first code waits this long: check for a slow disk or a busy CPU.")
    else:
        yield Result("kernel", "ok", f"starts in {started:.2f} s, executes in {executed * 1000:.0f} ms ({how})")


def check_model(settings: Settings) -> Iterator[Result]:
    from offline_assistants.llm.backend import ModelError, Piece, Sampling
    from offline_assistants.llm.catalog import ModelNotFound, resolve
    from offline_assistants.llm.packed import PackedError

    if settings.model == SCRIPTED:
        yield Result("model", "ok", "scripted (replies come from /_script): no model to load")
        return
    try:
        model = resolve(settings.model, settings.models_dir, data_dir=settings.data_dir)
    except ModelNotFound as exc:
        yield Result("model", "fail", str(exc), "Pass --model a .gguf file or a name from `offline-assistants models`.")
        return
    except PackedError as exc:
        yield Result("model", "fail", exc.problem, f"{exc.fix[:1].upper()}{exc.fix[1:]}.")
        return
    start = time.monotonic()
    try:
        opened = open_local_model(settings)
    except LaunchError as exc:
        yield Result("model", "fail", f"{model.name} ({model.path}) does not load: {exc.message}",
                     "Check that the file is a complete GGUF (download it again) that this llama-cpp-python reads.")
        return
    backend, repack = opened.backend, opened.repack
    loaded = time.monotonic() - start
    try:
        prompt = (backend.encode_system("You are a helpful assistant.") + backend.encode_message("user", "Say hello.")
                  + backend.generation_prefix())
        start = time.monotonic()
        sampling = Sampling(temperature=0.0, max_tokens=16)
        pieces = [p for p in backend.generate(prompt, sampling) if isinstance(p, Piece)]
        took = time.monotonic() - start
    except ModelError as exc:
        yield Result("model", "fail", f"{model.name} loads but does not generate: {exc}",
                     "Try --cpu-repack off, and if it still fails, another GGUF with --model.")
        return
    finally:
        backend.close()
    text = "".join(p.text for p in pieces).strip().replace("\n", " ")
    if not pieces:
        yield Result("model", "fail", f"{model.name} loads but generates nothing",
                     "Try --cpu-repack off, and if it still fails, another GGUF with --model.")
    else:
        yield Result("model", "ok", f"{model.name} loads in {loaded:.1f} s and generates ({len(pieces)} tokens in "
                     f"{took:.1f} s: {text[:40]!r})")
    # The verdict the model process was started with, cached in the data dir as serve caches it.
    yield Result("cpu repack", "ok", repack.banner().removeprefix("cpu repack: "))


CHECKS: list[Check] = [check_data_dir, check_database, check_port, check_sandbox, check_kernel, check_model]
MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def run(settings: Settings, *, out: TextIO | None = None, checks: list[Check] = CHECKS) -> int:
    out = out or sys.stdout
    counts = {"ok": 0, "warn": 0, "fail": 0}
    for check in checks:
        try:
            results = list(check(settings))
        except Exception as exc:  # a check that breaks is itself a finding, and the others still run
            results = [Result(check.__name__.removeprefix("check_").replace("_", " "), "fail",
                              f"the check itself failed: {type(exc).__name__}: {exc}",
                              "Report this at the project's issue tracker, with this output.")]
        for result in results:
            counts[result.status] += 1
            print(f"{MARK[result.status]}  {result.name:<11} {result.message}", file=out, flush=True)
            if result.fix:
                print(f"{'':6}{'':<11} fix: {result.fix}", file=out, flush=True)
    print(f"\n{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failed", file=out)
    return 1 if counts["fail"] else 0
