"""Threads over the official SDK: create (empty, with messages, tool resources, metadata), retrieve, update, delete."""

from __future__ import annotations

import openai
import pytest

from offline_assistants.engine import Engine


def count(engine: Engine, table: str) -> int:
    row = engine.store.database.query_one(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


def test_create_empty(any_client: openai.OpenAI) -> None:
    t = any_client.beta.threads.create()
    assert t.id.startswith("thread_")
    assert t.object == "thread"
    assert t.metadata == {}
    assert t.tool_resources is None
    assert t.created_at > 1_600_000_000
    assert any_client.beta.threads.messages.list(t.id).data == []


def test_create_with_messages_tool_resources_and_metadata(any_client: openai.OpenAI) -> None:
    f = any_client.files.create(file=("notes.txt", b"some notes"), purpose="assistants")
    vs = any_client.vector_stores.create(name="thread notes")
    t = any_client.beta.threads.create(
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "second"},
            {"role": "user", "content": [{"type": "text", "text": "third"}],
             "attachments": [{"file_id": f.id, "tools": [{"type": "code_interpreter"}]}], "metadata": {"n": "3"}},
        ],
        tool_resources={"code_interpreter": {"file_ids": [f.id]}, "file_search": {"vector_store_ids": [vs.id]}},
        metadata={"user": "jane"},
    )
    assert t.metadata == {"user": "jane"}
    assert t.tool_resources is not None
    assert t.tool_resources.code_interpreter is not None and t.tool_resources.code_interpreter.file_ids == [f.id]
    assert t.tool_resources.file_search is not None and t.tool_resources.file_search.vector_store_ids == [vs.id]
    msgs = any_client.beta.threads.messages.list(t.id, order="asc").data
    assert [m.role for m in msgs] == ["user", "assistant", "user"]
    assert [m.content[0].text.value for m in msgs] == ["first", "second", "third"]  # type: ignore[union-attr]
    assert all(m.thread_id == t.id and m.status == "completed" for m in msgs)
    assert msgs[2].attachments is not None and msgs[2].attachments[0].file_id == f.id
    assert msgs[2].metadata == {"n": "3"}
    assert any_client.beta.threads.retrieve(t.id) == t


def test_retrieve(any_client: openai.OpenAI) -> None:
    t = any_client.beta.threads.create(metadata={"a": "b"})
    got = any_client.beta.threads.retrieve(t.id)
    assert got.id == t.id and got.metadata == {"a": "b"} and got.created_at == t.created_at


def test_update_metadata(any_client: openai.OpenAI) -> None:
    vs = any_client.vector_stores.create()
    t = any_client.beta.threads.create(metadata={"a": "1", "b": "2"},
                                       tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    u = any_client.beta.threads.update(t.id, metadata={"c": "3", "a": "one"})
    assert u.metadata == {"a": "one", "b": "2", "c": "3"}  # merged, as the hosted API does
    assert u.tool_resources == t.tool_resources  # untouched by a metadata-only update
    assert any_client.beta.threads.retrieve(t.id).metadata == u.metadata
    # An update that sends nothing changes nothing.
    assert any_client.beta.threads.update(t.id) == u


def test_failed_update_changes_nothing(client: openai.OpenAI) -> None:
    t = client.beta.threads.create(metadata={"k": "v"})
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.update(t.id, metadata={"k": "v" * 513})
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.update(t.id, metadata={"k": "new"},
                                   tool_resources={"code_interpreter": {"file_ids": ["file-x"]}})
    assert client.beta.threads.retrieve(t.id) == t


def test_delete_removes_thread_and_messages(any_client: openai.OpenAI, engine: Engine) -> None:
    t = any_client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    any_client.beta.threads.messages.create(t.id, role="user", content="again")
    keep = any_client.beta.threads.create(messages=[{"role": "user", "content": "stay"}])
    assert count(engine, "messages") == 3
    d = any_client.beta.threads.delete(t.id)
    assert d.id == t.id and d.object == "thread.deleted" and d.deleted is True
    with pytest.raises(openai.NotFoundError) as exc:
        any_client.beta.threads.retrieve(t.id)
    assert exc.value.body == {"message": f"No thread found with id '{t.id}'.", "type": "invalid_request_error",
                              "param": None, "code": None}
    with pytest.raises(openai.NotFoundError):
        any_client.beta.threads.messages.list(t.id)
    with pytest.raises(openai.NotFoundError):
        any_client.beta.threads.delete(t.id)
    assert count(engine, "messages") == 1
    assert len(any_client.beta.threads.messages.list(keep.id).data) == 1


def test_failed_create_stores_nothing(client: openai.OpenAI, engine: Engine) -> None:
    good = {"role": "user", "content": "fine"}
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.create(
            messages=[good, good, {"role": "system", "content": "bad"}])  # type: ignore[list-item]
    assert exc.value.body["param"] == "messages[2].role"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.create(messages=[good, good, {"role": "user", "content": []}])
    assert exc.value.body["param"] == "messages[2].content"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.threads.create(messages=[good, good, {"role": "user", "content": "x",  # type: ignore[list-item]
                                                          "attachments": [{"file_id": "file-gone"}]}])
    assert exc.value.body["param"] == "messages[2].attachments"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.create(messages=[good], metadata={"k" * 65: "v"})
    assert count(engine, "threads") == 0
    assert count(engine, "messages") == 0


def test_too_many_initial_messages(client: openai.OpenAI, engine: Engine) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.create(messages=[{"role": "user", "content": str(i)} for i in range(33)])
    assert exc.value.body["param"] == "messages"  # type: ignore[index]
    assert exc.value.body["code"] == "array_above_max_length"  # type: ignore[index]
    assert count(engine, "threads") == 0


def test_create_is_all_or_nothing(client: openai.OpenAI, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread and its initial messages land in one transaction: a failure on the 3rd message undoes it all."""
    real_insert = engine.store.messages.insert
    calls = []

    def insert(values, tokens):  # type: ignore[no-untyped-def]
        calls.append(values["id"])
        if len(calls) == 3:
            raise RuntimeError("storage failed on the third message")
        return real_insert(values, tokens)

    monkeypatch.setattr(engine.store.messages, "insert", insert)
    with pytest.raises(openai.InternalServerError):
        client.beta.threads.create(messages=[{"role": "user", "content": str(i)} for i in range(4)])
    assert len(calls) == 3
    assert count(engine, "threads") == 0
    assert count(engine, "messages") == 0
    monkeypatch.undo()
    t = client.beta.threads.create(messages=[{"role": "user", "content": "ok"}])
    assert count(engine, "threads") == 1 and count(engine, "messages") == 1
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(t.id)]  # type: ignore[union-attr]
    assert texts == ["ok"]


def test_unknown_vector_stores_are_refused_and_inline_ones_made(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        any_client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": ["vs_nope"]}})
    assert exc.value.body["param"] == "tool_resources.file_search.vector_store_ids"  # type: ignore[index]
    f = any_client.files.create(file=("notes.txt", b"the launch code is tulip"), purpose="assistants")
    t = any_client.beta.threads.create(tool_resources={"file_search": {"vector_stores": [{"file_ids": [f.id]}]}})
    assert t.tool_resources is not None and t.tool_resources.file_search is not None
    [made] = t.tool_resources.file_search.vector_store_ids or []
    assert [x.id for x in any_client.vector_stores.files.list(made)] == [f.id]


def test_a_file_attached_for_file_search_goes_into_the_thread_store(any_client: openai.OpenAI) -> None:
    f = any_client.files.create(file=("notes.txt", b"the launch code is tulip"), purpose="assistants")
    t = any_client.beta.threads.create()
    any_client.beta.threads.messages.create(t.id, role="user", content="read this",
                                            attachments=[{"file_id": f.id, "tools": [{"type": "file_search"}]}])
    thread = any_client.beta.threads.retrieve(t.id)
    assert thread.tool_resources is not None and thread.tool_resources.file_search is not None
    [store_id] = thread.tool_resources.file_search.vector_store_ids or []
    store = any_client.vector_stores.retrieve(store_id)
    assert store.file_counts.total == 1 and store.expires_after is not None and store.expires_after.days == 7
