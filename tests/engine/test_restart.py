"""An engine started again on the data a killed one left: what the kill -9 soak (tests/reliability) found, each
pinned down on its own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import RunCreate
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.schemas.vector_stores import VectorStoreCreate

Start = Callable[[CannedBackend], Engine]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """A factory: an engine on the one data directory of this test (each call a fresh process, as it were)."""
    engines: list[Engine] = []

    def factory(backend: CannedBackend) -> Engine:
        engines.append(Engine(Settings(data_dir=tmp_path / "data"), backend))
        return engines[-1]

    yield factory
    for engine in engines:
        engine.close()


def run_to_end(engine: Engine, thread_id: str, assistant_id: str) -> str:
    run, _ = engine.runs.create(thread_id, RunCreate(assistant_id=assistant_id))
    deadline = time.monotonic() + 10
    while (status := engine.runs.get(thread_id, run.id).status) in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(0.01)
    return status


def test_a_scripted_model_started_again_reads_the_threads_stored_before(start: Start) -> None:
    # The scripted vocabulary gives word ids in the order it meets words: the ids stored by the first process
    # mean nothing to the second, which must count the messages again (it read ids it never gave out, and the
    # run failed with IndexError).
    first = start(CannedBackend(["first reply"]))
    assistant = first.assistants.create(AssistantCreate(model="gpt-4o")).id
    thread = first.threads.create(ThreadCreate(messages=[MessageCreate(role="user",
                                                                       content="alpha beta gamma delta")])).id
    assert run_to_end(first, thread, assistant) == "completed"
    first.close()
    backend = CannedBackend(["second reply"])
    again = start(backend)
    assert run_to_end(again, thread, assistant) == "completed"
    prompt = backend.text(backend.prompts[-1])
    assert "alpha beta gamma delta" in prompt and "first reply" in prompt


def test_bytes_that_no_file_row_names_are_removed_at_start(start: Start) -> None:
    first = start(CannedBackend())
    kept = first.files.upload([b"kept"], "kept.txt", "assistants")
    files_dir = first.settings.files_dir
    first.close()
    (files_dir / "file-AAAAAAAAAAAAAAAAAAAAAAAA").write_bytes(b"half an upload")  # written, its row never was
    (files_dir / "notes.txt").write_bytes(b"not ours")  # a name that is no file id is left alone
    again = start(CannedBackend())
    assert sorted(p.name for p in files_dir.iterdir()) == sorted([kept.id, "notes.txt"])
    assert again.files.path(kept.id).read_bytes() == b"kept"


def test_a_file_indexed_again_after_a_kill_has_its_chunks_once(start: Start) -> None:
    first = start(CannedBackend())
    text = " ".join(f"word{i % 500}" for i in range(4000)).encode()
    file_id = first.files.upload([text], "notes.txt", "assistants").id
    store = first.vector_stores.create(VectorStoreCreate(file_ids=[file_id]))
    deadline = time.monotonic() + 30
    while first.vector_stores.get_file(store.id, file_id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    chunks = "SELECT count(*) AS n FROM chunks WHERE file_id = ?"
    indexed = first.store.database.query_one(chunks, (file_id,))
    assert indexed is not None and indexed["n"] > 1
    # Killed after the chunks were written, before the file was marked completed: a restart indexes it again.
    first.store.vector_stores.update_file(store.id, file_id, {"status": "in_progress"})
    first.close()
    again = start(CannedBackend())
    deadline = time.monotonic() + 30
    while again.vector_stores.get_file(store.id, file_id).status == "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert again.vector_stores.get_file(store.id, file_id).status == "completed"
    assert again.store.database.query_one(chunks, (file_id,)) == indexed
