"""Vector stores over the official SDK, on a real index (FTS5 + the WordLlama embedder) and files the tests write:
upload_and_poll, batches, search with filters and thresholds, file content, deletion, expiry, and bad input."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine

NOTES = b"""# Project notes

The staging server is called heliotrope and runs in the Lisbon data centre.
Backups happen every night at 02:30 and are kept for ninety days.

## Cooking
The best pancakes use buttermilk, a pinch of salt and a hot cast iron pan.
"""
RECIPES = b"Soup of the day: roasted tomato with basil. Bread is baked each morning with rye flour.\n"


def upload(client: openai.OpenAI, name: str, data: bytes) -> str:
    return client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id


def searching_assistant(client: openai.OpenAI) -> tuple[Any, Any]:
    """A store holding NOTES, and an assistant with file_search over it."""
    store = client.vector_stores.create(name="notes")
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("notes.md", io.BytesIO(NOTES)))
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    return store, assistant


def wait_indexed(engine: Engine, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not engine.indexer.idle():
        assert time.monotonic() < deadline, "indexing did not finish"
        time.sleep(0.05)


def test_upload_and_poll_then_search_finds_the_planted_fact(client: openai.OpenAI, engine: Engine) -> None:
    store = client.vector_stores.create(name="notes", metadata={"team": "ops"})
    assert store.object == "vector_store" and store.status == "completed" and store.file_counts.total == 0
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id,
                                                      file=("notes.md", io.BytesIO(NOTES)))
    assert done.status == "completed" and done.last_error is None and done.usage_bytes > 0
    assert done.chunking_strategy is not None and done.chunking_strategy.type == "static"
    again = client.vector_stores.retrieve(store.id)
    assert again.file_counts.completed == 1 and again.file_counts.total == 1 and again.usage_bytes > 0
    results = client.vector_stores.search(store.id, query="What is the staging server called?")
    hits = list(results)
    assert hits and hits[0].filename == "notes.md" and "heliotrope" in hits[0].content[0].text
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    content = list(client.vector_stores.files.content(done.id, vector_store_id=store.id))
    assert "heliotrope" in "".join(c.text or "" for c in content)


def test_batches_filters_threshold_and_delete(client: openai.OpenAI, engine: Engine) -> None:
    store = client.vector_stores.create(name="two")
    a, b = upload(client, "notes.md", NOTES), upload(client, "recipes.txt", RECIPES)
    client.vector_stores.files.create(vector_store_id=store.id, file_id=a, attributes={"kind": "ops", "year": 2024})
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[b],
                                                     attributes={"kind": "food", "year": 2025})
    assert batch.object == "vector_store.files_batch" and batch.file_counts.total == 1
    wait_indexed(engine)
    assert client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id).status == "completed"
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert [f.id for f in listed] == [b]
    assert {f.id for f in client.vector_stores.files.list(store.id, filter="completed")} == {a, b}

    query = "bread baked with rye flour"
    assert list(client.vector_stores.search(store.id, query=query))[0].file_id == b
    only_ops = list(client.vector_stores.search(store.id, query=query,
                                                filters={"type": "eq", "key": "kind", "value": "ops"}))
    assert only_ops and {h.file_id for h in only_ops} == {a}  # filtered before the cut: the ops file still shows
    recent = list(client.vector_stores.search(store.id, query=query, filters={"type": "and", "filters": [
        {"type": "gte", "key": "year", "value": 2025}, {"type": "ne", "key": "kind", "value": "ops"}]}))
    assert {h.file_id for h in recent} == {b}
    assert list(client.vector_stores.search(store.id, query=query,
                                            ranking_options={"score_threshold": 0.999})) == []

    client.vector_stores.files.delete(b, vector_store_id=store.id)
    assert all(h.file_id != b for h in client.vector_stores.search(store.id, query=query))
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1
    deleted = client.vector_stores.delete(store.id)
    assert deleted.deleted and deleted.object == "vector_store.deleted"
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_unsupported_and_empty_files_fail_with_the_api_codes(client: openai.OpenAI) -> None:
    store = client.vector_stores.create()
    bad = client.vector_stores.files.upload_and_poll(vector_store_id=store.id,
                                                     file=("blob.xyz", io.BytesIO(b"\x00\x01\x02")))
    assert bad.status == "failed" and bad.last_error is not None and bad.last_error.code == "unsupported_file"
    empty = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("empty.txt", io.BytesIO(b"  ")))
    assert empty.status == "failed" and empty.last_error is not None and empty.last_error.code == "invalid_file"
    assert client.vector_stores.retrieve(store.id).file_counts.failed == 2


def test_bad_input_gets_the_real_4xx_and_changes_nothing(client: openai.OpenAI) -> None:
    store = client.vector_stores.create(name="kept")
    with pytest.raises(openai.BadRequestError) as exc:
        client.vector_stores.search(store.id, query="x", max_num_results=51)
    assert exc.value.body["param"] == "max_num_results"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as exc:
        client.vector_stores.search(store.id, query="x", filters={"type": "and", "filters": [{"type": "zz"}]})
    assert str(exc.value.body["param"]).startswith("filters")  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.create(chunking_strategy={"type": "static", "static": {
            "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 60}})
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-missing")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.create(file_ids=["file-missing"])
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.create(extra_body={"colour": "red"})
    assert [s.name for s in client.vector_stores.list()] == ["kept"]


def test_an_expired_store_is_reported_expired_and_not_searched(client: openai.OpenAI, engine: Engine) -> None:
    store = client.vector_stores.create(name="old", expires_after={"anchor": "last_active_at", "days": 1})
    assert store.expires_at == store.last_active_at + 86_400  # type: ignore[operator]
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("notes.md", io.BytesIO(NOTES)))
    engine.store.vector_stores.update(store.id, {"expires_at": 1})
    assert client.vector_stores.retrieve(store.id).status == "expired"
    assert list(client.vector_stores.search(store.id, query="heliotrope")) == []


def test_indexing_left_in_progress_resumes_after_a_restart(make_engine: Callable[..., Engine],
                                                           client: openai.OpenAI, engine: Engine) -> None:
    store = client.vector_stores.create()
    file_id = upload(client, "notes.md", NOTES)
    engine.indexer.stop()  # as if the process died before indexing
    client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    assert client.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status == "in_progress"
    from offline_assistants.config import Settings
    from offline_assistants.llm.canned import CannedBackend

    data_dir = engine.settings.data_dir
    again = Engine(Settings(data_dir=data_dir), CannedBackend())
    try:
        wait_indexed(again)
        assert again.vector_stores.get_file(store.id, file_id).status == "completed"
    finally:
        again.close()


def test_a_run_searches_the_files_and_cites_what_it_found(make_engine: Callable[..., Engine],
                                                          make_client: Callable[..., openai.OpenAI]) -> None:
    from offline_assistants.llm.canned import CannedBackend

    backend = CannedBackend([" search the files.", '{"query": "staging server"}', "It is called heliotrope."])
    engine = make_engine(backend)
    client = make_client(engine)
    store, assistant = searching_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the staging server called?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search" and call.file_search.ranking_options is not None  # type: ignore[union-attr]
    results = call.file_search.results or []  # type: ignore[union-attr]
    assert results and results[0].file_name == "notes.md" and results[0].content is None  # not asked for
    included = client.beta.threads.runs.steps.retrieve(
        steps[0].id, thread_id=thread.id, run_id=run.id,
        include=["step_details.tool_calls[*].file_search.results[*].content"])
    full = included.step_details.tool_calls[0].file_search.results  # type: ignore[union-attr]
    assert full and full[0].content and "heliotrope" in (full[0].content[0].text or "")
    # The model read the passages under their markers, and its answer cites the best one.
    assert "【0:0†notes.md】" in backend.text(backend.prompts[-1])
    message = client.beta.threads.messages.list(thread.id).data[0]
    text = message.content[0].text  # type: ignore[union-attr]
    citations = [a for a in text.annotations if a.type == "file_citation"]
    assert citations, text
    for a in citations:
        assert text.value[a.start_index:a.end_index] == a.text == "【0:0†notes.md】"
        assert a.file_citation.file_id == results[0].file_id  # type: ignore[union-attr]


def test_on_the_default_model_a_question_about_the_files_is_searched_and_cited(
        real_client: openai.OpenAI) -> None:
    client = real_client
    store, assistant = searching_assistant(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the staging server called?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].type == "file_search"  # type: ignore[union-attr]
    text = client.beta.threads.messages.list(thread.id).data[0].content[0].text  # type: ignore[union-attr]
    citations = [a for a in text.annotations if a.type == "file_citation"]
    assert citations and all(text.value[a.start_index:a.end_index] == a.text for a in citations)
    # A question the files say nothing about is answered without searching.
    other = client.beta.threads.create(messages=[{"role": "user", "content": "What is the capital of France?"}])
    plain = client.beta.threads.runs.create_and_poll(thread_id=other.id, assistant_id=assistant.id)
    kinds = [s.type for s in client.beta.threads.runs.steps.list(thread_id=other.id, run_id=plain.id).data]
    assert plain.status == "completed" and kinds == ["message_creation"]


def _samples():  # noqa: ANN202 - the PDF and DOCX writers of tests/retrieval, loaded by path
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("sample_files", Path(__file__).parents[1] / "retrieval" /
                                                  "sample_files.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["report.pdf", "memo.docx", "readme.md"])
def test_a_planted_fact_in_a_pdf_docx_or_markdown_file_ranks_first(client: openai.OpenAI, name: str) -> None:
    samples = _samples()
    fact = "The spare key is hidden under the blue flowerpot by the greenhouse."
    filler = [f"Section {i} describes routine maintenance of the building and its heating." for i in range(30)]
    body = filler[:15] + [fact] + filler[15:]
    data = {"report.pdf": lambda: samples.make_pdf(["\n".join(body[:16]), "\n".join(body[16:])]),
            "memo.docx": lambda: samples.make_docx(body),
            "readme.md": lambda: ("# Readme\n\n" + "\n\n".join(body)).encode()}[name]()
    store = client.vector_stores.create(chunking_strategy={"type": "static", "static": {
        "max_chunk_size_tokens": 100, "chunk_overlap_tokens": 20}})
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=(name, io.BytesIO(data)))
    assert done.status == "completed", done.last_error
    top = list(client.vector_stores.search(store.id, query="Where is the spare key hidden?"))[0]
    assert top.filename == name and "flowerpot" in top.content[0].text


def test_file_batches_upload_and_poll_counts_and_cancel(client: openai.OpenAI, engine: Engine) -> None:
    store = client.vector_stores.create(name="batch")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id, files=[("a.md", io.BytesIO(NOTES)), ("b.txt", io.BytesIO(RECIPES)),
                                         ("c.bin", io.BytesIO(b"\x00\xff"))])
    assert batch.status == "completed"
    assert (batch.file_counts.completed, batch.file_counts.failed, batch.file_counts.total) == (2, 1, 3)
    assert client.vector_stores.retrieve(store.id).file_counts.total == 3
    # A batch still indexing can be cancelled: its waiting files end cancelled, the counts say so.
    engine.indexer.stop()
    pending = client.vector_stores.file_batches.create(vector_store_id=store.id,
                                                       file_ids=[upload(client, "d.md", NOTES)])
    assert pending.status == "in_progress" and pending.file_counts.in_progress == 1
    assert client.vector_stores.retrieve(store.id).status == "in_progress"
    cancelled = client.vector_stores.file_batches.cancel(pending.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.cancelled == 1
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.file_batches.cancel(pending.id, vector_store_id=store.id)


def test_streamed_steps_carry_search_content_only_when_the_run_asked(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    from offline_assistants.llm.canned import CannedBackend

    script = [" search the files.", '{"query": "staging server"}', "Heliotrope."]
    engine = make_engine(CannedBackend(script * 2))
    client = make_client(engine)
    store, assistant = searching_assistant(client)
    for include, has_content in (([], False), (["step_details.tool_calls[*].file_search.results[*].content"], True)):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Name the staging server."}])
        events = list(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, stream=True,
                                                      include=include))  # type: ignore[arg-type]
        done = [e.data for e in events if e.event == "thread.run.step.completed" and e.data.type == "tool_calls"]
        results = done[0].step_details.tool_calls[0].file_search.results  # type: ignore[union-attr]
        assert results and (results[0].content is not None) == has_content
        assert events[-1].event == "thread.run.completed"
    found = client.vector_stores.search(store.id, query="What is the staging server called?", rewrite_query=True)
    assert found.search_query == ["staging server called"]  # type: ignore[attr-defined]
