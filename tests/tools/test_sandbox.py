"""The sandboxed code interpreter against hostile code: real kernels in bubblewrap, real model-free code through the
runner. Each abuse ends with the next execution in the same session working; the state survives unless the kernel
had to be restarted (the fork bomb: its children are copies of the kernel)."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offline_assistants.tools.code_interpreter import ExecutionResult, JupyterCodeRunner, SandboxUnavailable
from offline_assistants.tools.code_interpreter.sandbox import detection
from offline_assistants.tools.code_interpreter.sandbox.processes import MAX_TASKS

FOUND = detection.detect()
pytestmark = pytest.mark.skipif(FOUND.bwrap is None, reason=f"no sandbox runs on this machine: {FOUND.reason}")

FILE_CAP = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir laid out as the server's: the database next to the sandbox root."""
    data = tmp_path_factory.mktemp("data")
    with sqlite3.connect(data / "assistants.db") as db:
        db.execute("CREATE TABLE secrets (value TEXT)")
        db.execute("INSERT INTO secrets VALUES ('sk-in-the-database')")
    return data


@pytest.fixture(scope="module")
def runner(data_dir: Path, kernel_runner: Callable[..., JupyterCodeRunner]) -> JupyterCodeRunner:
    # Shared to save kernel start-ups; each test has its own sessions.
    return kernel_runner(data_dir / "sandbox", timeout_s=20, max_output_chars=2000, max_file_bytes=FILE_CAP,
                         sandbox="required")


@pytest.fixture(scope="module")
def fast_runner(data_dir: Path, kernel_runner: Callable[..., JupyterCodeRunner]) -> JupyterCodeRunner:
    return kernel_runner(data_dir / "sandbox-fast", timeout_s=2, sandbox="required")


def _ok(result: ExecutionResult) -> ExecutionResult:
    assert result.error is None, result.logs
    return result


def _still_works(runner: JupyterCodeRunner, session: str, *, kept: bool = True) -> None:
    """The next execution in the session works, and (when `kept`) the variable set before the abuse is there."""
    after = _ok(runner.execute(session, "print(kept if 'kept' in dir() else 'fresh')"))
    assert after.logs == ("before\n" if kept else "fresh\n")


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_the_kernel_sees_its_directory_and_the_python_install_only(runner: JupyterCodeRunner,
                                                                     data_dir: Path) -> None:
    _ok(runner.execute("view", "kept = 'before'"))
    result = _ok(runner.execute("view", "import os; print(os.getcwd(), sorted(os.listdir('/mnt')), os.getppid())"))
    assert result.logs == "/mnt/data ['data'] 1\n"  # its parent is bwrap's init, not the server
    # Its own processes only: bwrap's init and the kernel (the host has dozens).
    assert int(_ok(runner.execute("view", "print(sum(p.isdigit() for p in os.listdir('/proc')))")).logs) <= 3
    hidden = [str(data_dir), str(data_dir / "sandbox"), "/etc/passwd", "/etc/shadow", "/var", "/srv", "/opt"]
    there = _ok(runner.execute("view", f"print([p for p in {hidden!r} if os.path.exists(p)])")).logs
    assert there == "[]\n"
    # A home dir shows only where it holds the Python install (the parents of a bound path are made, empty).
    home = runner.execute("view", f"print(os.listdir({str(Path.home())!r}))")
    assert home.error == "FileNotFoundError" or set(eval(home.logs)) <= {".pyenv", ".local", ".venv"}, home.logs
    _still_works(runner, "view")


def test_opening_the_servers_database_fails(runner: JupyterCodeRunner, data_dir: Path) -> None:
    db = data_dir / "assistants.db"
    _ok(runner.execute("db", "kept = 'before'"))
    result = runner.execute("db", f"print(open({str(db)!r}, 'rb').read())")
    assert result.error == "FileNotFoundError"
    assert "sk-in-the-database" not in result.logs
    assert runner.execute("db", "open('../../assistants.db', 'rb')").error == "FileNotFoundError"
    _still_works(runner, "db")


def test_another_threads_directory_cannot_be_listed(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("thread-a", "open('private.txt', 'w').write('mine')"))
    assert (runner.root_dir / "thread-a" / "private.txt").exists()
    _ok(runner.execute("thread-b", "kept = 'before'"))
    for path in (str(runner.root_dir / "thread-a"), "../thread-a", str(runner.root_dir)):
        result = runner.execute("thread-b", f"import os; print(os.listdir({path!r}))")
        assert result.error == "FileNotFoundError", (path, result.logs)
        assert "private.txt" not in result.logs
    _still_works(runner, "thread-b")


def test_no_network_even_to_loopback(runner: JupyterCodeRunner) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        _ok(runner.execute("net", "kept = 'before'"))
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
        result = runner.execute("net", code)
        assert result.error == "ConnectionRefusedError", result.logs
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing reached the host's loopback
    assert runner.execute("net", "socket.getaddrinfo('example.com', 80)").error == "gaierror"
    _still_works(runner, "net")


def test_a_fork_bomb_is_stopped_and_the_kernel_restarted(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("bomb", "kept = 'before'"))
    start = time.monotonic()
    result = runner.execute("bomb", "import os\nwhile True:\n    os.fork()")
    # Stopped by the task cap, long before the 20 s timeout: 3-5 s on 2 busy cores, most of it forking 256
    # copies of the kernel and killing them.
    assert time.monotonic() - start < 15
    assert result.error == "too_many_processes" and result.state_lost
    assert f"({MAX_TASKS} processes and threads)" in result.logs
    _still_works(runner, "bomb", kept=False)
    # The restarted kernel can start processes again: nothing of the bomb is left in its sandbox.
    assert _ok(runner.execute("bomb", "import subprocess; print(subprocess.run(['true']).returncode)")).logs == "0\n"


def test_writing_10_gb_stops_at_the_file_size_cap(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("disk", "kept = 'before'"))
    code = "with open('big.bin', 'wb') as f:\n    for _ in range(10 * 1024):\n        f.write(b'0' * 2**20)"
    start = time.monotonic()
    result = runner.execute("disk", code)
    assert time.monotonic() - start < 10
    assert result.error == "OSError" and "File too large" in result.logs
    assert (runner.root_dir / "disk" / "big.bin").stat().st_size == FILE_CAP
    # /tmp is a private tmpfs of the same size: files that each fit still cannot fill the host's memory.
    tmp = "for i in range(4):\n    open(f'/tmp/part{i}', 'wb').write(b'0' * 12 * 2**20)"
    result = runner.execute("disk", tmp)
    assert result.error == "OSError" and "No space left on device" in result.logs
    _still_works(runner, "disk")


def test_100_mb_of_output_is_cut_to_the_output_cap(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("flood", "kept = 'before'"))
    start = time.monotonic()
    result = _ok(runner.execute("flood", "for i in range(100):\n    print(str(i) * 2**20)\nprint('END')"))
    assert time.monotonic() - start < 15  # ~4 s measured, nearly all of it ipykernel writing the output
    assert len(result.logs) <= 2000 and "output truncated" in result.logs and result.logs.endswith("END\n")
    _still_works(runner, "flood")


def test_while_true_is_interrupted_and_the_state_kept(fast_runner: JupyterCodeRunner) -> None:
    _ok(fast_runner.execute("loop", "kept = 'before'"))
    start = time.monotonic()
    result = fast_runner.execute("loop", "while True:\n    pass")
    assert time.monotonic() - start < 4
    assert result.error == "timeout" and not result.state_lost  # the interrupt reached the kernel inside
    _still_works(fast_runner, "loop")


def test_a_50_gb_allocation_is_refused(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("alloc", "kept = 'before'"))
    result = runner.execute("alloc", "x = bytearray(50 * 1024**3)")
    assert result.error == "memory" and not result.state_lost
    _still_works(runner, "alloc")


def test_killing_the_parent_reaches_neither_bwrap_nor_the_server(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("kill", "kept = 'before'"))
    # Unsandboxed, the kernel's parent is the server: this would kill it (here, pytest).
    code = ("import os, signal\nfor sig in (signal.SIGTERM, signal.SIGKILL):\n    try:\n"
            "        os.kill(os.getppid(), sig)\n    except PermissionError:\n        pass\nprint(os.getppid())")
    assert _ok(runner.execute("kill", code)).logs == "1\n"
    _still_works(runner, "kill")


def test_the_servers_environment_stays_out(runner: JupyterCodeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFLINE_ASSISTANTS_API_KEY", "sk-server-secret")
    result = _ok(runner.execute("env", "import os; print(dict(os.environ))"))
    assert "sk-server-secret" not in result.logs and "JPY_PARENT_PID" not in result.logs
    assert _ok(runner.execute("env", "import os; print(os.environ['HOME'])")).logs == "/tmp\n"


def test_files_in_and_out_of_the_sandbox(runner: JupyterCodeRunner, tmp_path: Path) -> None:
    upload = tmp_path / "upload.csv"
    upload.write_text("a,b\n")
    code = "open('data.csv', 'a').write('1,2\\n'); open('/mnt/data/out.txt', 'w').write('hi')"
    result = _ok(runner.execute("files", code, input_files={"data.csv": upload}))
    workdir = runner.root_dir / "files"
    assert result.files == [workdir / "data.csv", workdir / "out.txt"]
    assert (workdir / "data.csv").read_text() == "a,b\n1,2\n" and upload.read_text() == "a,b\n"
    assert _ok(runner.execute("files", "import matplotlib.pyplot as plt; plt.plot([1, 2]); plt.show()")).images


def test_shutdown_and_close_leave_no_process(data_dir: Path,
                                             kernel_runner: Callable[..., JupyterCodeRunner]) -> None:
    root = data_dir / "other-sandbox"  # a short path: the IPC dirs are then under it
    r = kernel_runner(root, sandbox="required", idle_timeout_s=600)
    try:
        _ok(r.execute("one", "import subprocess; p = subprocess.Popen(['sleep', '600'])"))
        _ok(r.execute("two", "x = 1"))
        ipc = sorted(p.parent for p in (root / ".kernels").glob("s-*/kernel.json"))
        assert len(ipc) == 2
        pids = [_processes_naming(str(d)) for d in ipc]
        assert all(pids)  # bwrap and the kernel name their connection file
        r.shutdown("one")
        r.shutdown("two")
    finally:
        r.close()
    # The bwrap processes named their IPC dir; the kernels and the sleep die with them (their PID namespace).
    assert not any(_processes_naming(str(d)) for d in ipc)
    assert not any(d.exists() for d in ipc)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline(pid) == b"sleep\x00600\x00"]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_required_refuses_where_no_sandbox_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(detection.BWRAP_ENV, "/bin/false")
    detection.detect.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="install bubblewrap"):
            JupyterCodeRunner(tmp_path / "required", sandbox="required")
        assert not (tmp_path / "required").exists()  # refused before making anything
        with caplog.at_level("WARNING"):
            assert JupyterCodeRunner(tmp_path / "auto", sandbox="auto").bwrap is None
        assert "NOT sandboxed" in caplog.text
        assert JupyterCodeRunner(tmp_path / "off", sandbox="off").bwrap is None
    finally:
        detection.detect.cache_clear()
