"""`serve --backend-url`: a real serve process on a real llama-cpp-python server, and the refusal when the server
cannot be reached."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from offline_assistants.cli import main
from offline_assistants.testing import free_port


def test_an_unreachable_backend_refuses_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["serve", "--backend-url", url, "--data-dir", str(tmp_path), "--no-code-interpreter"]) == 1
    err = capsys.readouterr().err
    assert "error: the model server at http://127.0.0.1:" in err and "is unreachable" in err


def test_serve_runs_on_a_remote_server(tmp_path: Path, llama_cpp_upstream: Any,
                                       serve_command: Callable[..., subprocess.Popen[str]]) -> None:
    port = free_port()
    server = serve_command("--backend-url", llama_cpp_upstream.url, "--port", str(port), "--data-dir", str(tmp_path),
                           "--no-code-interpreter", "--max-concurrent-runs", "3", "--max-output-tokens", "8")
    lines: list[str] = []
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "serving:" in line or not line:
                break
        banner = "".join(lines)
        assert f"model:    {llama_cpp_upstream.url}: llama-cpp-python, model 'smollm2'" in banner, banner
        assert "tokens:   counted with the server's tokenize endpoint" in banner
        assert "runs:     up to 1 at once (this server runs one request at a time)" in banner
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=5)
        assistant = client.beta.assistants.create(model="gpt-4o", temperature=0)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hi."}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status in ("completed", "incomplete"), run.last_error
        reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
        assert reply.role == "assistant" and reply.content[0].text.value.strip()  # type: ignore[union-attr]
        client.close()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
