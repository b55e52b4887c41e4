"""Code runs in a container's own kernel (through the engine's code runner, as the Responses face will run it):
it sees the container's files, what it writes becomes container files downloadable through the SDK, the
container's memory limit caps the kernel, and expiry or deletion ends the kernel."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.errors import InvalidRequest
from offline_assistants.ids import now
from offline_assistants.tools.code_interpreter import ExecutionResult, JupyterCodeRunner


@pytest.fixture
def setup(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI], tmp_path: Path,
          kernel_runner: Callable[..., JupyterCodeRunner]) -> tuple[Engine, openai.OpenAI, JupyterCodeRunner]:
    runner = kernel_runner(tmp_path / "sandbox", sandbox="off", timeout_s=30, memory_mb=2048)
    engine = make_engine(code_runner=runner)
    return engine, make_client(engine), runner


def _run(engine: Engine, runner: JupyterCodeRunner, container_id: str, code: str) -> ExecutionResult:
    result = runner.execute(engine.containers.session(container_id), code)
    assert result.error is None, result.logs
    return result


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"


def test_code_reads_the_files_and_what_it_writes_downloads(
        setup: tuple[Engine, openai.OpenAI, JupyterCodeRunner]) -> None:
    engine, sdk, runner = setup
    uploaded = sdk.files.create(file=("numbers.txt", b"1\n2\n3\n"), purpose="user_data")
    container = sdk.containers.create(name="k", file_ids=[uploaded.id])
    sdk.containers.files.create(container.id, file=("scratch.txt", b"to be removed"))
    # Unsandboxed, /mnt/data is the kernel's working directory (inside bubblewrap it is mounted there).
    result = _run(engine, runner, container.id, (
        "import os\n"
        "print(sum(int(x) for x in open('numbers.txt')))\n"
        "os.makedirs('out', exist_ok=True)\n"
        "open('out/table.csv', 'w').write('a,b\\n1,2\\n')\n"
        "os.remove('scratch.txt')\n"))
    assert result.logs == "6\n"

    written = engine.containers.sync_files(container.id, result.files)
    assert [(f.path, f.source, f.bytes) for f in written] == [("/mnt/data/out/table.csv", "assistant", 8)]
    listed = {f.path: f.source for f in sdk.containers.files.list(container.id)}
    assert listed == {"/mnt/data/numbers.txt": "user", "/mnt/data/out/table.csv": "assistant"}  # scratch is gone
    table = written[0]
    assert sdk.containers.files.content.retrieve(table.id, container_id=container.id).read() == b"a,b\n1,2\n"
    assert engine.containers.sync_files(container.id) == []  # nothing new since

    # The code rewrites a file it wrote before: that file is among what it wrote, with its new size.
    result = _run(engine, runner, container.id, "open('out/table.csv', 'a').write('3,4\\n')")
    (again,) = engine.containers.sync_files(container.id, result.files)
    assert (again.id, again.bytes) == (table.id, 12)
    assert sdk.containers.files.content.retrieve(table.id, container_id=container.id).read() == b"a,b\n1,2\n3,4\n"


def test_memory_limit_caps_the_kernel_and_expiry_and_delete_end_it(
        setup: tuple[Engine, openai.OpenAI, JupyterCodeRunner]) -> None:
    engine, sdk, runner = setup
    probe = "import os, resource\nprint(resource.getrlimit(resource.RLIMIT_DATA)[0] >> 20, os.getpid())"
    small = sdk.containers.create(name="small", expires_after={"anchor": "last_active_at", "minutes": 1})
    big = sdk.containers.create(name="big", memory_limit="4g")
    cap, small_pid = map(int, _run(engine, runner, small.id, probe).logs.split())
    assert cap == 1024  # 1g
    cap, big_pid = map(int, _run(engine, runner, big.id, probe).logs.split())
    assert cap == 2048  # 4g asked, the server's cap (--code-memory-mb) is less

    assert engine.containers.expire(now() + 61) == [small.id]
    assert _gone(small_pid) and not (runner.root_dir / small.id).exists()
    with pytest.raises(InvalidRequest, match="Container is expired"):
        engine.containers.session(small.id)

    sdk.containers.delete(big.id)
    assert _gone(big_pid) and not (runner.root_dir / big.id).exists()
