"""llama-cpp-python's own OpenAI server (`python -m llama_cpp.server`) as a benchmark's baseline, loaded as ours
is: the same model file, n_ctx, threads (prompt and generation), weight repacking, flash attention (llm/batch.py)
and batch size (both take llama.cpp's 512). Run as a module, this file is that server with llama.cpp's weight
repacking set first: the server has no option for it (llm/llama_params.py).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class UpstreamSettings:
    model: Path  # the .gguf file
    n_ctx: int
    threads: int
    repack: bool  # llama.cpp's weight repacking, as ours decided it
    cache: bool = False  # the server's prompt cache (`--cache`: model states kept in RAM, by their tokens)

    def args(self, port: int) -> list[str]:
        threads = str(self.threads)
        return ["--model", str(self.model), "--n_ctx", str(self.n_ctx), "--n_threads", threads,
                "--n_threads_batch", threads, "--flash_attn", "true", "--cache", str(self.cache),
                "--host", "127.0.0.1", "--port", str(port)]


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when the thread that started it ends, so a killed benchmark leaves no
    model server behind."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def llama_cpp_server(settings: UpstreamSettings, folder: Path) -> Iterator[str]:
    """The server started (its base URL, …/v1, once it answers), stopped on leaving; its log goes to `folder`."""
    from offline_assistants.testing import free_port

    port = free_port()
    log = folder / f"llama-cpp-python-{port}.log"
    args = [sys.executable, "-m", __name__, "on" if settings.repack else "off", *settings.args(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_serving(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the OpenAI-style server started as `process` answers GET /models; its log's end in the error if it
    exits first or does not start in START_TIMEOUT_S (then it is killed). The tests' upstream servers use it too."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the model server did not start in {START_TIMEOUT_S:g} s: {log.read_text()[-2000:]}")


if __name__ == "__main__":  # `python -m offline_assistants.bench.upstream on|off SERVER-ARGS...`
    from llama_cpp.server.__main__ import main

    from offline_assistants.llm.llama_params import model_params

    repack = sys.argv.pop(1) == "on"
    with model_params(repack):
        main()
