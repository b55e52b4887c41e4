"""The command line explains itself and lists models."""

from __future__ import annotations

import subprocess
import sys

import pytest

from offline_assistants.cli import main


def test_serve_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--db", "--model", "--api-key", "--data-dir", "--no-code-interpreter",
                   "--threads", "--gpu-layers", "--kv-cache-mb"):
        assert option in out
    assert "127.0.0.1" in out


def test_models_lists_the_embedded_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    assert "SmolLM2-135M-Instruct" in capsys.readouterr().out


def test_console_script_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "offline_assistants", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "serve" in done.stdout


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model", "no-such-model", "--data-dir", "/tmp/oa-cli-test"]) == 2
    assert "no-such-model" in capsys.readouterr().err
