"""Messages over the official SDK: content as a string and as parts, attachments, list filters, update, delete."""

from __future__ import annotations

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.schemas.messages import MessageCreate


def test_create_with_string_content(any_client: openai.OpenAI) -> None:
    t = any_client.beta.threads.create()
    m = any_client.beta.threads.messages.create(t.id, role="user", content="Hello there")
    assert m.id.startswith("msg_")
    assert m.object == "thread.message"
    assert m.thread_id == t.id
    assert m.role == "user"
    assert m.status == "completed"
    assert m.assistant_id is None and m.run_id is None
    assert m.attachments == [] and m.metadata == {}
    assert m.incomplete_details is None and m.incomplete_at is None
    assert m.completed_at is not None and m.completed_at >= m.created_at
    assert len(m.content) == 1
    part = m.content[0]
    assert part.type == "text"
    assert part.text.value == "Hello there" and part.text.annotations == []  # type: ignore[union-attr]
    a = any_client.beta.threads.messages.create(t.id, role="assistant", content="Hi!")
    assert a.role == "assistant" and a.assistant_id is None


def test_create_with_parts_and_attachments(any_client: openai.OpenAI) -> None:
    img = any_client.files.create(file=("pic.png", b"\x89PNG\r\n\x1a\n fake"), purpose="vision")
    doc = any_client.files.create(file=("doc.txt", b"text"), purpose="assistants")
    t = any_client.beta.threads.create()
    m = any_client.beta.threads.messages.create(
        t.id,
        role="user",
        content=[
            {"type": "text", "text": "Look at these"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            {"type": "image_file", "image_file": {"file_id": img.id}},
        ],
        attachments=[{"file_id": doc.id, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}],
        metadata={"source": "test"},
    )
    assert [p.type for p in m.content] == ["text", "image_url", "image_file"]
    assert m.content[0].text.value == "Look at these"  # type: ignore[union-attr]
    assert m.content[1].image_url.url == "https://example.com/cat.png"  # type: ignore[union-attr]
    assert m.content[1].image_url.detail == "low"  # type: ignore[union-attr]
    assert m.content[2].image_file.file_id == img.id  # type: ignore[union-attr]
    assert m.attachments is not None and len(m.attachments) == 1
    assert m.attachments[0].file_id == doc.id
    assert [tool.type for tool in m.attachments[0].tools or []] == ["code_interpreter", "file_search"]
    assert m.metadata == {"source": "test"}
    assert any_client.beta.threads.messages.retrieve(m.id, thread_id=t.id) == m


def test_unknown_files_are_refused(client: openai.OpenAI, engine: Engine) -> None:
    t = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.threads.messages.create(t.id, role="user", content="x", attachments=[{"file_id": "file-nope"}])
    assert exc.value.body == {"message": "No file found with id 'file-nope'.", "type": "invalid_request_error",
                              "param": "attachments", "code": None}
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.threads.messages.create(
            t.id, role="user", content=[{"type": "image_file", "image_file": {"file_id": "file-nope"}}])
    assert exc.value.body["param"] == "content"  # type: ignore[index]
    assert engine.store.database.query("SELECT id FROM messages") == []


def test_bad_content_is_refused(client: openai.OpenAI) -> None:
    t = client.beta.threads.create()
    cases = [
        ({"role": "system", "content": "x"}, "role", "invalid_value"),
        ({"role": "user", "content": []}, "content", "empty_array"),
        ({"role": "user", "content": 5}, "content", "invalid_type"),
        ({"role": "user", "content": [{"type": "text"}]}, "content[0].text", "missing_required_parameter"),
        ({"role": "user", "content": [{"type": "text", "text": 5}]}, "content[0].text", "invalid_type"),
        ({"role": "user", "content": [{"type": "image_file", "image_file": {}}]}, "content[0].image_file.file_id",
         "missing_required_parameter"),
        ({"role": "user", "content": [{"type": "video"}]}, "content[0]", "invalid_value"),
        ({"role": "user"}, "content", "missing_required_parameter"),
    ]
    for body, param, code in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            client.post(f"/threads/{t.id}/messages", body=body, cast_to=object)
        assert (exc.value.body["param"], exc.value.body["code"]) == (param, code), body  # type: ignore[index]
    assert client.beta.threads.messages.list(t.id).data == []


def test_list_order_and_run_id_filter(any_client: openai.OpenAI, engine: Engine) -> None:
    t = any_client.beta.threads.create()
    ids = [any_client.beta.threads.messages.create(t.id, role="user", content=f"m{i}").id for i in range(3)]
    # Messages written by a run carry its id; store them the way the run machinery does, straight through the store.
    values, tokens = engine.threads.prepare(t.id, MessageCreate(role="assistant", content="from run"),
                                             run_id="run_abc", assistant_id="asst_abc")
    from_run = engine.store.messages.insert(values, tokens)
    assert [m.id for m in any_client.beta.threads.messages.list(t.id).data] == [from_run.id, *ids[::-1]]
    assert [m.id for m in any_client.beta.threads.messages.list(t.id, order="asc").data] == [*ids, from_run.id]
    only = any_client.beta.threads.messages.list(t.id, run_id="run_abc").data
    assert [m.id for m in only] == [from_run.id]
    assert only[0].run_id == "run_abc" and only[0].assistant_id == "asst_abc" and only[0].role == "assistant"
    assert any_client.beta.threads.messages.list(t.id, run_id="run_other").data == []


def test_retrieve(any_client: openai.OpenAI) -> None:
    t = any_client.beta.threads.create()
    m = any_client.beta.threads.messages.create(t.id, role="user", content="x")
    assert any_client.beta.threads.messages.retrieve(m.id, thread_id=t.id) == m
    other = any_client.beta.threads.create()
    with pytest.raises(openai.NotFoundError) as exc:  # a message is only found through its own thread
        any_client.beta.threads.messages.retrieve(m.id, thread_id=other.id)
    assert exc.value.body["message"] == f"No message found with id '{m.id}'."  # type: ignore[index]


def test_update_metadata(any_client: openai.OpenAI) -> None:
    t = any_client.beta.threads.create()
    m = any_client.beta.threads.messages.create(t.id, role="user", content="x", metadata={"a": "1"})
    u = any_client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"b": "2"})
    assert u.metadata == {"a": "1", "b": "2"}  # merged, as the hosted API does
    assert u.content == m.content and u.created_at == m.created_at and u.role == "user"
    assert any_client.beta.threads.messages.retrieve(m.id, thread_id=t.id).metadata == {"a": "1", "b": "2"}
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={f"k{i}": "v" for i in range(17)})
    assert exc.value.body["code"] == "object_above_max_properties"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.threads.messages.update(m.id, thread_id=t.id, extra_body={"content": "changed"})
    assert exc.value.body["code"] == "unknown_parameter"  # type: ignore[index]
    assert any_client.beta.threads.messages.retrieve(m.id, thread_id=t.id) == u


def test_delete(any_client: openai.OpenAI) -> None:
    t = any_client.beta.threads.create()
    keep = any_client.beta.threads.messages.create(t.id, role="user", content="keep")
    m = any_client.beta.threads.messages.create(t.id, role="user", content="drop")
    d = any_client.beta.threads.messages.delete(m.id, thread_id=t.id)
    assert d.id == m.id and d.object == "thread.message.deleted" and d.deleted is True
    with pytest.raises(openai.NotFoundError):
        any_client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    with pytest.raises(openai.NotFoundError):
        any_client.beta.threads.messages.delete(m.id, thread_id=t.id)
    assert [x.id for x in any_client.beta.threads.messages.list(t.id).data] == [keep.id]
    after = any_client.beta.threads.messages.create(t.id, role="user", content="later")
    assert [x.id for x in any_client.beta.threads.messages.list(t.id, order="asc").data] == [keep.id, after.id]


def test_messages_of_missing_thread(client: openai.OpenAI) -> None:
    for call in (lambda: client.beta.threads.messages.create("thread_x", role="user", content="x"),
                 lambda: client.beta.threads.messages.list("thread_x"),
                 lambda: client.beta.threads.messages.retrieve("msg_x", thread_id="thread_x"),
                 lambda: client.beta.threads.messages.update("msg_x", thread_id="thread_x", metadata={}),
                 lambda: client.beta.threads.messages.delete("msg_x", thread_id="thread_x")):
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert exc.value.body["message"] == "No thread found with id 'thread_x'."  # type: ignore[index]
