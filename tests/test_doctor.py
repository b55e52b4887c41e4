"""`offline-assistants doctor` on real installations: a healthy one passes every check; each broken one exits 1 and
names the fix. Only the first test loads the real model; the others pass --model scripted."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from offline_assistants.cli import main
from offline_assistants.doctor import Result, run
from offline_assistants.testing import free_port
from offline_assistants.tools.code_interpreter.sandbox import detection

CHECKS = ("data dir", "database", "port", "sandbox", "kernel", "model")
Doctor = Callable[..., tuple[int, str]]  # the `doctor` fixture: its exit code and what it printed


@pytest.fixture
def doctor(capsys: pytest.CaptureFixture[str]) -> Doctor:
    """`offline-assistants doctor ARGS...` (on a free port unless given one): its exit code and what it printed.
    Every check runs, the kernel's too: it starts a kernel (so the test is marked `kernel`)."""

    def run_doctor(*args: str, port: int | None = None) -> tuple[int, str]:
        code = main(["doctor", "--port", str(port or free_port()), *args])
        return code, capsys.readouterr().out

    return run_doctor


def _line(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line[6:].startswith(name))


def _fix(out: str, name: str) -> str:
    lines = out.splitlines()
    at = lines.index(_line(out, name))
    assert lines[at + 1].strip().startswith("fix: "), out
    return lines[at + 1].strip().removeprefix("fix: ")


@pytest.mark.model  # the model check loads the embedded model
def test_a_healthy_installation_passes_every_check(doctor: Doctor, tmp_path: Path) -> None:
    code, out = doctor("--data-dir", str(tmp_path / "data"))
    assert code == 0, out
    for name in (*CHECKS, "cpu repack"):
        assert _line(out, name).startswith("ok  "), out
    assert "generates (" in _line(out, "model") and "FAIL" not in out


def test_scripted_installation_is_healthy_without_a_model(doctor: Doctor,
                                                          tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with sqlite3.connect(data / "assistants.db") as db:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (x)")
    code, out = doctor("--data-dir", str(data), "--model", "scripted")
    assert code == 0, out
    for name in CHECKS:
        assert _line(out, name).startswith("ok  "), out
    assert "integrity ok" in _line(out, "database") and "journal wal" in _line(out, "database")
    expected_kernel = "(sandboxed)" if detection.detect().bwrap is not None else "(unsandboxed)"
    assert _line(out, "kernel").endswith(expected_kernel)
    assert out.rstrip().endswith("0 failed")


def test_a_file_that_is_not_sqlite_fails_with_its_fix(doctor: Doctor, tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n")
    code, out = doctor("--data-dir", str(tmp_path), "--db", str(db), "--model", "scripted")
    assert code == 1
    assert _line(out, "database").startswith("FAIL") and "is not an SQLite database" in out
    assert _fix(out, "database") == f"Move {db} aside (or pass --db the right file): serve would refuse to open it."


def test_a_corrupt_database_fails(doctor: Doctor, tmp_path: Path) -> None:
    db = tmp_path / "assistants.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.execute("CREATE INDEX t_x ON t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(f"row {i}" * 20,) for i in range(2000)])
    conn.close()
    raw = bytearray(db.read_bytes())
    raw[4096 * 3: 4096 * 3 + 2048] = b"\xff" * 2048  # a page of the table's b-tree, overwritten
    db.write_bytes(bytes(raw))
    code, out = doctor("--data-dir", str(tmp_path), "--model", "scripted")
    assert code == 1 and _line(out, "database").startswith("FAIL"), out
    assert _fix(out, "database")


def test_a_data_dir_that_cannot_be_made_fails(doctor: Doctor, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, out = doctor("--data-dir", str(blocker / "data"), "--model", "scripted")
    assert code == 1 and _line(out, "data dir").startswith("FAIL"), out
    assert "cannot be made" in _line(out, "data dir") and "--data-dir" in _fix(out, "data dir")


def test_a_data_dir_others_can_write_is_a_warning(doctor: Doctor, tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(0o777)
    code, out = doctor("--data-dir", str(data), "--model", "scripted")
    assert code == 0 and _line(out, "data dir").startswith("WARN"), out
    assert _fix(out, "data dir") == f"Run `chmod go-w {data}` so no one else can change the database or files."


def test_a_port_in_use_fails_with_its_fix(doctor: Doctor, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out = doctor("--data-dir", str(tmp_path), "--model", "scripted", port=port)
    assert code == 1 and _line(out, "port").startswith("FAIL"), out
    assert f"127.0.0.1:{port} is in use" in out and "pass --port" in _fix(out, "port")


def test_no_sandbox_warns_in_auto_and_fails_when_required(doctor: Doctor, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(detection.BWRAP_ENV, "/bin/false")
    detection.detect.cache_clear()
    try:
        code, out = doctor("--data-dir", str(tmp_path), "--model", "scripted")
        assert code == 0 and _line(out, "sandbox").startswith("WARN"), out
        assert _line(out, "kernel").endswith("(unsandboxed)")
        code, out = doctor("--data-dir", str(tmp_path), "--model", "scripted", "--code-sandbox", "required")
    finally:
        detection.detect.cache_clear()
    assert code == 1 and _line(out, "sandbox").startswith("FAIL") and _line(out, "kernel").startswith("FAIL")
    assert _fix(out, "sandbox").startswith("Install bubblewrap")


def test_a_check_that_breaks_is_reported_and_the_rest_still_run(tmp_path: Path) -> None:
    import io

    from offline_assistants.config import Settings

    def broken(settings: Settings) -> list[Result]:
        raise RuntimeError("boom")

    def fine(settings: Settings) -> list[Result]:
        return [Result("fine", "ok", "all good")]

    out = io.StringIO()
    assert run(Settings(data_dir=tmp_path), out=out, checks=[broken, fine]) == 1
    assert "FAIL  broken" in out.getvalue() and "RuntimeError: boom" in out.getvalue()
    assert "ok    fine" in out.getvalue()


def test_doctor_takes_serves_options_as_serve_defines_them() -> None:
    import argparse

    from offline_assistants.cli import _parser

    subcommands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve, doctor = subcommands.choices["serve"], subcommands.choices["doctor"]

    def options(parser: argparse.ArgumentParser) -> dict[str, tuple[object, ...]]:
        return {a.option_strings[0]: (a.default, a.help, a.choices, a.type) for a in parser._actions
                if a.option_strings and a.option_strings[0] != "-h"}

    shared = options(doctor)
    assert set(shared) == {"--host", "--port", "--data-dir", "--db", "--model", "--models-dir", "--cpu-repack",
                           "--code-sandbox"}
    assert {name: options(serve)[name] for name in shared} == shared
