"""The command line explains itself and lists models."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from offline_assistants.cli import _parser, _settings, main
from offline_assistants.config import Settings


def test_serve_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--db", "--model", "--api-key", "--data-dir", "--no-code-interpreter",
                   "--threads", "--gpu-layers", "--kv-cache-mb"):
        assert option in out
    assert "127.0.0.1" in out


def test_every_option_has_help() -> None:
    subcommands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subcommands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {'/'.join(action.option_strings)} has no help text"


def test_flag_defaults_are_the_settings_defaults() -> None:
    # Settings is the one source of defaults: `serve` with no options builds exactly Settings().
    assert _settings(_parser().parse_args(["serve"])) == Settings()
    models = _parser().parse_args(["models"])
    assert models.models_dir == Settings().models_dir


def test_models_lists_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert "SmolLM2-135M-Instruct" in capsys.readouterr().out


def test_console_script_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "offline_assistants", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "serve" in done.stdout


@pytest.mark.parametrize("command", ["serve", "convert-thread"])
def test_a_database_url_is_refused_not_taken_for_a_folder(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    extra = ["thread_x"] if command == "convert-thread" else []
    with pytest.raises(SystemExit) as exited:
        main([command, "--db", "postgresql://user@db.example:5432/assistants", *extra])
    assert exited.value.code == 2
    assert "postgresql:// URLs are not supported: --db takes an SQLite file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no "postgresql:" folder, no database


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "no-such-model", "--data-dir", "/tmp/oa-cli-test"]) == 2
    assert "no-such-model" in capsys.readouterr().err


def _stop(server: subprocess.Popen[str]) -> None:
    """Stop a `serve` process as Ctrl-C would, killing it (and its model process) if it hangs."""
    import os
    import signal

    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.model  # it loads the real model in its own server process
def test_serve_with_no_options_says_how_it_runs_the_model(tmp_path, serve_command) -> None:  # noqa: ANN001
    """`offline-assistants serve` exactly as a new user types it (the data dir from the environment), as a real
    process: the banner names the model process and the repack path and why, and the API answers."""
    import os
    import time

    import openai

    from offline_assistants.testing import free_port

    args: list[str] = []
    port = 8000
    if not _port_free(port):  # something else holds the default port on this machine
        port = free_port()
        args += ["--port", str(port)]
    env = {**os.environ, "OFFLINE_ASSISTANTS_DATA": str(tmp_path / "data")}
    server = serve_command(*args, env=env)
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
        assert "in a model process" in banner and "cpu repack: " in banner
        repack = next(line for line in lines if line.startswith("cpu repack: "))
        assert repack.startswith(("cpu repack: on (", "cpu repack: off (")) and repack.rstrip().endswith(")")
        assert f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in banner
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="anything", max_retries=5)
        assert client.models.list().data
    finally:
        _stop(server)
    # The model process went with the server.
    assert subprocess.run(["pgrep", "-f", "offline_assistants.llm.child", "-s", str(server.pid)],
                          capture_output=True).returncode == 1


def test_serve_model_scripted_is_driven_over_http(tmp_path, serve_command) -> None:  # noqa: ANN001
    """`serve --model scripted` as a real process, driven as an app in another language would drive it: the
    script posted to /_script, the run made through the SDK."""
    import os
    import time

    import httpx2
    import openai

    from offline_assistants.testing import free_port

    port = free_port()
    env = {**os.environ, "OFFLINE_ASSISTANTS_DATA": str(tmp_path / "data")}
    server = serve_command("--model", "scripted", "--port", str(port), "--no-code-interpreter", env=env)
    try:
        assert server.stderr is not None
        deadline = time.monotonic() + 60
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "serving:" in line or not line:
                break
        assert any(line.startswith("model:    scripted") for line in lines), lines
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):  # uvicorn binds just after the banner
            try:
                posted = httpx2.post(f"{base}/_script/steps", json={"steps": [{"kind": "reply", "text": "Hi there."}]})
                break
            except httpx2.ConnectError:
                time.sleep(0.1)
        assert posted.status_code == 200
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="anything", max_retries=0)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "completed"
        assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == "Hi there."  # type: ignore[union-attr]
    finally:
        _stop(server)


@pytest.mark.model  # the truncation benchmark opens the embedded model's tokenizer and process
def test_bench_prints_each_figure_next_to_its_baseline(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`offline-assistants bench` on the truncation measurement alone (the model ones take minutes; the table and
    JSON come from the same code for all of them)."""
    import json

    from offline_assistants.bench import run
    from offline_assistants.bench.truncation import TruncationOptions

    monkeypatch.setitem(run.QUICK, "truncation", TruncationOptions(sizes=(200, 1000), reps=5, baseline_reps=(1, 1),
                                                                   newest_reps=1, tail_add=10, quiet_wait=0))
    assert main(["bench", "--only", "truncation", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [row] = out["rows"]
    assert row["benchmark"] == "truncation" and float(row["ours"]) > 0 and float(row["baseline"]) > 0
    assert float(row["ratio"]) > 1  # the stored-token window beats re-tokenizing, even on 1k messages
    with pytest.raises(SystemExit):
        main(["bench", "--only", "nonsense"])


def test_serve_sandboxes_kernels_by_default(tmp_path, serve_command) -> None:  # noqa: ANN001
    """`serve` with no sandbox option, as a real process: code the model runs cannot open the server's database."""
    import os
    import time

    import httpx2
    import openai

    from offline_assistants.testing import free_port
    from offline_assistants.tools.code_interpreter.sandbox.detection import detect

    if detect().bwrap is None:
        pytest.skip(f"no sandbox runs on this machine: {detect().reason}")
    port = free_port()
    data = tmp_path / "data"
    env = {**os.environ, "OFFLINE_ASSISTANTS_DATA": str(data)}
    server = serve_command("--model", "scripted", "--port", str(port), env=env)
    try:
        assert server.stderr is not None
        lines: list[str] = []
        while not lines or ("serving:" not in lines[-1] and lines[-1]):
            lines.append(server.stderr.readline())
        assert any(line.startswith("sandbox:  bubblewrap") for line in lines), lines
        base = f"http://127.0.0.1:{port}"
        code = f"print(open({str(data / 'assistants.db')!r}, 'rb').read(16))"
        steps = [{"kind": "code", "code": code}, {"kind": "reply", "text": "Done."}]
        for _ in range(50):  # uvicorn binds just after the banner
            try:
                assert httpx2.post(f"{base}/_script/steps", json={"steps": steps}).status_code == 200
                break
            except httpx2.ConnectError:
                time.sleep(0.1)
        assert (data / "assistants.db").read_bytes()[:16] == b"SQLite format 3\x00"  # it is there, outside
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="anything", max_retries=0)
        assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Read the database."}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        assert run.status == "completed"
        step = next(s for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
                    if s.type == "tool_calls")
        logs = step.step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
        assert "FileNotFoundError" in logs and "SQLite format" not in logs
    finally:
        _stop(server)


def test_serve_code_sandbox_required_refuses_without_one(monkeypatch: pytest.MonkeyPatch, tmp_path,  # noqa: ANN001
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from offline_assistants.tools.code_interpreter.sandbox import detection

    monkeypatch.setenv(detection.BWRAP_ENV, "/bin/false")  # a "bwrap" that runs nothing
    detection.detect.cache_clear()
    try:
        assert main(["serve", "--model", "scripted", "--data-dir", str(tmp_path), "--code-sandbox", "required"]) == 1
    finally:
        detection.detect.cache_clear()
    err = capsys.readouterr().err
    assert "--code-sandbox required, but no sandbox works here" in err and "install bubblewrap" in err


def test_convert_thread_copies_a_thread_into_a_conversation(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    import json

    from offline_assistants.cli import main
    from offline_assistants.config import Settings
    from offline_assistants.engine import Engine
    from offline_assistants.llm.canned import CannedBackend
    from offline_assistants.schemas.threads import ThreadCreate

    settings = Settings(data_dir=tmp_path / "data")
    engine = Engine(settings, CannedBackend())
    thread = engine.threads.create(ThreadCreate.model_validate({"messages": [{"role": "user", "content": "Hi"}]}))
    engine.close()
    assert main(["convert-thread", thread.id, "--data-dir", str(tmp_path / "data")]) == 0
    converted = json.loads(capsys.readouterr().out)
    assert converted["thread_id"] == thread.id and converted["conversation_id"].startswith("conv_")
    assert len(converted["items"]) == 1
    assert main(["convert-thread", "thread_nope", "--data-dir", str(tmp_path / "data")]) == 1
