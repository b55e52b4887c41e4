"""Real-kernel tests for the code_interpreter runner (no mocks), unsandboxed (`sandbox="off"`: what a machine
without bubblewrap runs, with host pids and paths the tests can check); test_sandbox.py runs the sandboxed runner."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offline_assistants.tools.code_interpreter import ExecutionResult, JupyterCodeRunner
from offline_assistants.tools.code_interpreter.runner import TRUNCATION_MARKER

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runner(kernel_runner: Callable[..., JupyterCodeRunner]) -> JupyterCodeRunner:
    # Shared to save kernel start-ups; every test uses its own session id.
    return kernel_runner(timeout_s=30, max_output_chars=2000, sandbox="off")


@pytest.fixture(scope="module")
def fast_runner(kernel_runner: Callable[..., JupyterCodeRunner]) -> JupyterCodeRunner:
    return kernel_runner(timeout_s=2, sandbox="off")


def _ok(result: ExecutionResult) -> ExecutionResult:
    assert result.error is None, result.logs
    return result


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        # An unreaped child is a zombie: dead, just not collected yet.
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if _process_gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_print_expression_and_exception(runner: JupyterCodeRunner) -> None:
    result = _ok(runner.execute("basic", "print(2+2)"))
    assert result.logs == "4\n"
    assert result.images == [] and result.files == [] and not result.state_lost

    assert "2" in _ok(runner.execute("basic", "1+1")).logs

    result = runner.execute("basic", "x = 1\n1/0")
    assert result.error == "ZeroDivisionError"
    assert "Traceback" in result.logs and "division by zero" in result.logs
    assert "\x1b[" not in result.logs
    assert not result.state_lost

    result = runner.execute("basic", "def f(:\n    pass")
    assert result.error == "SyntaxError"


def test_state_persists_per_session_only(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("persist-a", "secret_value = 41"))
    assert _ok(runner.execute("persist-a", "print(secret_value + 1)")).logs == "42\n"
    other = runner.execute("persist-b", "print(secret_value)")
    assert other.error == "NameError"
    cwd_a = _ok(runner.execute("persist-a", "import os; print(os.getcwd())")).logs.strip()
    cwd_b = _ok(runner.execute("persist-b", "import os; print(os.getcwd())")).logs.strip()
    assert cwd_a == str(runner.root_dir / "persist-a")
    assert cwd_b == str(runner.root_dir / "persist-b")


def test_sessions_run_concurrently(runner: JupyterCodeRunner) -> None:
    for sid in ("conc-1", "conc-2"):
        _ok(runner.execute(sid, "import time"))
    results: dict[str, ExecutionResult] = {}

    def work(sid: str) -> None:
        results[sid] = runner.execute(sid, "time.sleep(1); print('done')")

    start = time.monotonic()
    threads = [threading.Thread(target=work, args=(sid,)) for sid in ("conc-1", "conc-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 1.9
    assert all(r.logs == "done\n" for r in results.values())


def test_same_session_calls_are_serialised(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("serial", "n = 0"))
    code = "import time\nv = n\ntime.sleep(0.05)\nn = v + 1"
    threads = [threading.Thread(target=runner.execute, args=("serial", code)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _ok(runner.execute("serial", "print(n)")).logs == "4\n"


def test_timeout_interrupts_and_session_survives(fast_runner: JupyterCodeRunner) -> None:
    _ok(fast_runner.execute("timeout", "kept = 'still here'"))
    start = time.monotonic()
    result = fast_runner.execute("timeout", "while True: pass")
    assert time.monotonic() - start < 10
    assert result.error == "timeout"
    assert "timed out" in result.logs
    assert not result.state_lost  # the interrupt worked, variables survive
    after = _ok(fast_runner.execute("timeout", "print(kept)"))
    assert after.logs == "still here\n" and not after.state_lost


def test_unresponsive_kernel_is_killed_on_timeout(fast_runner: JupyterCodeRunner) -> None:
    code = (
        "import time\n"
        "while True:\n"
        "    try:\n"
        "        time.sleep(10)\n"
        "    except KeyboardInterrupt:\n"
        "        pass\n"
    )
    _ok(fast_runner.execute("stubborn", "kept = 1"))
    start = time.monotonic()
    result = fast_runner.execute("stubborn", code)
    assert time.monotonic() - start < 10
    assert result.error == "timeout" and result.state_lost
    after = fast_runner.execute("stubborn", "print(kept)")
    assert after.error == "NameError" and after.state_lost
    assert not _ok(fast_runner.execute("stubborn", "print(1)")).state_lost


def test_huge_allocation_is_refused(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("memory", "kept = 7"))
    result = runner.execute("memory", "x = bytearray(4 * 1024**3)")
    assert result.error == "memory" or (result.error == "kernel_died" and result.state_lost)
    after = _ok(runner.execute("memory", "print('alive')"))
    assert after.logs == "alive\n"
    if result.error == "memory":
        assert _ok(runner.execute("memory", "print(kept)")).logs == "7\n"


def test_matplotlib_figures_become_png(runner: JupyterCodeRunner) -> None:
    shown = _ok(
        runner.execute("plot", "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    )
    assert len(shown.images) == 1 and shown.images[0].startswith(PNG_MAGIC)
    assert "<Figure" not in shown.logs

    left_open = _ok(runner.execute("plot", "plt.figure(); plt.bar([1, 2], [3, 4]);"))
    assert len(left_open.images) == 1 and left_open.images[0].startswith(PNG_MAGIC)

    assert _ok(runner.execute("plot", "print('no plot')")).images == []


def test_written_files_are_reported(runner: JupyterCodeRunner) -> None:
    code = (
        "import os\n"
        "open('out.txt', 'w').write('hello')\n"
        "os.makedirs('sub', exist_ok=True)\n"
        "open('sub/data.csv', 'w').write('a,b')\n"
        "os.makedirs('.hidden', exist_ok=True)\n"
        "open('.hidden/skip.txt', 'w').write('x')\n"
        "os.symlink('/etc/hostname', 'link')\n"
    )
    result = _ok(runner.execute("files", code))
    workdir = runner.root_dir / "files"
    assert result.files == [workdir / "out.txt", workdir / "sub" / "data.csv"]
    assert all(p.is_absolute() for p in result.files)
    # Untouched files are not reported again; rewritten ones are.
    assert _ok(runner.execute("files", "print(1)")).files == []
    again = _ok(runner.execute("files", "open('out.txt', 'a').write('!')"))
    assert again.files == [workdir / "out.txt"]


def test_input_files(runner: JupyterCodeRunner, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_text("x,y\n1,2\n")
    result = _ok(
        runner.execute("inputs", "print(open('data.csv').read())", input_files={"data.csv": source})
    )
    assert "1,2" in result.logs
    assert result.files == []  # an unchanged input is not an output

    changed = _ok(
        runner.execute(
            "inputs", "open('data.csv', 'a').write('3,4\\n')", input_files={"data.csv": source}
        )
    )
    assert changed.files == [runner.root_dir / "inputs" / "data.csv"]
    assert source.read_text() == "x,y\n1,2\n"  # the original is never touched

    for bad in ("../evil.txt", "a/b.txt", "..", ""):
        with pytest.raises(ValueError):
            runner.execute("inputs", "pass", input_files={bad: source})


def test_input_file_does_not_follow_planted_symlink(
    runner: JupyterCodeRunner, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    _ok(runner.execute("symlink", f"import os; os.symlink({str(victim)!r}, 'data.txt')"))
    source = tmp_path / "src.txt"
    source.write_text("uploaded")
    result = _ok(
        runner.execute(
            "symlink", "print(open('data.txt').read())", input_files={"data.txt": source}
        )
    )
    assert result.logs == "uploaded\n"
    assert victim.read_text() == "original"


def test_kernel_death_is_recovered(runner: JupyterCodeRunner) -> None:
    _ok(runner.execute("death", "kept = 1"))
    died = runner.execute("death", "import os; os._exit(1)")
    assert died.error == "kernel_died" and died.state_lost
    after = runner.execute("death", "print('back')")
    assert after.error is None and after.logs == "back\n" and after.state_lost
    assert runner.execute("death", "kept").error == "NameError"


def test_kernel_death_between_calls_is_noticed(runner: JupyterCodeRunner) -> None:
    code = (
        "import os, threading\n"
        "threading.Timer(1.0, os._exit, args=(3,)).start()\n"
        "print(os.getpid())"
    )
    pid = int(_ok(runner.execute("death-later", code)).logs)
    assert _wait_gone(pid)
    after = _ok(runner.execute("death-later", "print('fresh')"))
    assert after.logs == "fresh\n" and after.state_lost


def test_environment_is_allowlisted(
    runner: JupyterCodeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFLINE_ASSISTANTS_API_KEY", "sk-server-secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    code = (
        "import os\n"
        "print(os.environ.get('OFFLINE_ASSISTANTS_API_KEY'), os.environ.get('OPENAI_API_KEY'))\n"
        "print(os.environ.get('MPLBACKEND'))\n"
    )
    result = _ok(runner.execute("env", code))
    assert result.logs == "None None\nmodule://matplotlib_inline.backend_inline\n"


def test_output_is_truncated(runner: JupyterCodeRunner) -> None:
    result = _ok(runner.execute("trunc", "print('a' * 10_000 + 'END')"))
    assert len(result.logs) <= 2000
    assert TRUNCATION_MARKER.strip() in result.logs
    assert result.logs.startswith("aaa") and result.logs.endswith("END\n")
    # Many small writes take the same bounded path.
    spam = _ok(runner.execute("trunc", "for i in range(20_000): print(i)"))
    assert len(spam.logs) <= 2000 and spam.logs.startswith("0\n1\n")
    assert spam.logs.endswith("19999\n")


def test_shutdown_session(runner: JupyterCodeRunner) -> None:
    pid = int(_ok(runner.execute("bye", "import os; kept = 1; print(os.getpid())")).logs)
    runner.shutdown("bye")
    runner.shutdown("never-started")  # unknown ids are a no-op
    assert _wait_gone(pid)
    after = runner.execute("bye", "print(kept)")
    # A deliberately ended session starts over; that is not "lost" state.
    assert after.error == "NameError" and not after.state_lost


def test_invalid_session_id(runner: JupyterCodeRunner) -> None:
    for bad in ("../x", "a/b", "", ".hidden", "ok\n"):
        with pytest.raises(ValueError):
            runner.execute(bad, "pass")


def test_idle_kernels_are_reaped_and_close_stops_all(tmp_path: Path,
                                                     kernel_runner: Callable[..., JupyterCodeRunner]) -> None:
    r = kernel_runner(tmp_path, idle_timeout_s=0.5, sandbox="off")
    try:
        pid = int(_ok(r.execute("idle", "import os; kept = 1; print(os.getpid())")).logs)
        assert _wait_gone(pid, timeout=5)
        after = r.execute("idle", "print(kept)")
        assert after.error == "NameError" and after.state_lost
        pid2 = int(_ok(r.execute("idle", "import os; print(os.getpid())")).logs)
    finally:
        r.close()
    assert _wait_gone(pid2)
    assert list((tmp_path / ".kernels").glob("*.json")) == []
    with pytest.raises(RuntimeError):
        r.execute("idle", "pass")


def test_shutdown_can_remove_the_working_directory(tmp_path: Path,
                                                   kernel_runner: Callable[..., JupyterCodeRunner]) -> None:
    runner = kernel_runner(tmp_path / "root", timeout_s=10, sandbox="off")
    try:
        runner.execute("gone", "open('f.txt', 'w').write('x')")
        assert (tmp_path / "root" / "gone" / "f.txt").exists()
        runner.shutdown("gone")
        assert (tmp_path / "root" / "gone").exists()
        runner.shutdown("gone", remove_files=True)
        assert not (tmp_path / "root" / "gone").exists()
    finally:
        runner.close()


def test_the_memory_default_is_the_servers() -> None:
    # A runner made without memory_mb gets the limit `serve` would give it: Settings is the one place for it.
    from offline_assistants.config import Settings

    assert JupyterCodeRunner.__init__.__kwdefaults__["memory_mb"] == Settings().code_memory_mb
