"""Conversations and their items over the official SDK; responses made in a conversation append to it."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend


def test_conversations_and_items(any_client: openai.OpenAI) -> None:
    conv = any_client.conversations.create(items=[{"role": "user", "content": "Hello"},
                                                  {"role": "assistant", "content": "Hi! How can I help?"}],
                                           metadata={"topic": "demo"})
    assert conv.id.startswith("conv_") and conv.object == "conversation" and conv.metadata == {"topic": "demo"}
    assert any_client.conversations.retrieve(conv.id).created_at == conv.created_at
    updated = any_client.conversations.update(conv.id, metadata={"owner": "ada"})
    assert updated.metadata == {"topic": "demo", "owner": "ada"}
    items = any_client.conversations.items.list(conv.id, order="asc").data
    assert [(i.type, i.role) for i in items] == [("message", "user"), ("message", "assistant")]  # type: ignore[union-attr]
    added = any_client.conversations.items.create(conv.id, items=[
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me more"}]}])
    [new] = added.data
    got = any_client.conversations.items.retrieve(new.id, conversation_id=conv.id)
    assert got.id == new.id and got.content[0].text == "Tell me more"  # type: ignore[union-attr]
    page = any_client.conversations.items.list(conv.id, limit=2)
    assert page.has_more and page.data[0].id == new.id  # newest first by default
    after = any_client.conversations.items.delete(new.id, conversation_id=conv.id)
    assert after.id == conv.id and len(any_client.conversations.items.list(conv.id).data) == 2
    deleted = any_client.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        any_client.conversations.retrieve(conv.id)


def test_unknown_and_bad_requests(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        any_client.conversations.retrieve("conv_nope")
    thread = any_client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        any_client.conversations.retrieve(thread.id)  # a thread is not a conversation by that name
    with pytest.raises(openai.BadRequestError):
        any_client.conversations.create(items=[{"role": "user", "content": "x"}] * 21)
    with pytest.raises(openai.BadRequestError):
        any_client.conversations.create(items=[{"role": "system", "content": "Be terse."}])
    with pytest.raises(openai.BadRequestError):
        any_client.conversations.create(items=[{"type": "function_call", "call_id": "c", "name": "f"}])


def test_responses_in_a_conversation_append_to_it(make_engine: Callable[..., Engine],
                                                  make_client: Callable[..., openai.OpenAI]) -> None:
    backend = CannedBackend(["Nice to meet you, Ada.", "Your name is Ada."])
    client = make_client(make_engine(backend))
    conv = client.conversations.create()
    first = client.responses.create(model="gpt-4o", input="I am Ada.", conversation=conv.id)
    assert first.conversation is not None and first.conversation.id == conv.id
    second = client.responses.create(model="gpt-4o", input="What is my name?", conversation={"id": conv.id})
    assert second.output_text == "Your name is Ada."
    assert "Nice to meet you, Ada." in backend.text(backend.prompts[-1])
    texts = [i.content[0].text for i in client.conversations.items.list(conv.id, order="asc").data]  # type: ignore[union-attr]
    assert texts == ["I am Ada.", "Nice to meet you, Ada.", "What is my name?", "Your name is Ada."]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input="Hi", conversation="conv_missing")


def test_function_calls_are_kept_in_order_and_read_by_the_next_response(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    # As the Agents SDK's conversation session stores a turn: the request, the call, its output, the answer.
    backend = CannedBackend(["It was 12 C in Rome."])
    client = make_client(make_engine(backend))
    conv = client.conversations.create(items=[
        {"role": "user", "content": "Weather in Rome?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "12 C"},
        {"role": "assistant", "content": "It is 12 C."}])
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output", "message"]
    call = client.conversations.items.retrieve(items[1].id, conversation_id=conv.id)
    assert call.type == "function_call" and call.arguments == '{"city": "Rome"}'  # type: ignore[union-attr]
    r = client.responses.create(model="gpt-4o", input="What was it?", conversation=conv.id)
    assert r.output_text == "It was 12 C in Rome."
    seen = backend.text(backend.prompts[-1])
    assert seen.index('{"city": "Rome"}') < seen.index("12 C") < seen.index("What was it?")
    client.conversations.items.delete(items[2].id, conversation_id=conv.id)
    assert len(client.conversations.items.list(conv.id).data) == 5  # 4 - 1 + the question and the answer
    assert client.beta.threads.messages.list(conv.id).data[0].content[0].text.value == "It was 12 C in Rome."  # type: ignore[union-attr]


def test_a_thread_converted_to_a_conversation_continues_there(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    backend = CannedBackend(["Your name is Ada."])
    engine = make_engine(backend)
    client = make_client(engine)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "I am Ada."},
                                                  {"role": "assistant", "content": "Hello Ada!"}])
    old = [m.id for m in client.beta.threads.messages.list(thread.id, order="asc").data]
    converted = client.post(f"/threads/{thread.id}/x_conversation", cast_to=object)
    assert isinstance(converted, dict) and converted["object"] == "x_thread.converted"
    conv_id = converted["conversation_id"]
    items = client.conversations.items.list(conv_id, order="asc").data
    assert [converted["items"][m] for m in old] == [i.id for i in items]
    r = client.responses.create(model="gpt-4o", input="What is my name?", conversation=conv_id)
    assert r.output_text == "Your name is Ada." and "I am Ada." in backend.text(backend.prompts[-1])
    assert len(client.beta.threads.messages.list(thread.id).data) == 2  # the thread is left as it was
    with pytest.raises(openai.NotFoundError):
        client.post("/threads/thread_nope/x_conversation", cast_to=object)


def test_a_response_in_a_conversation_may_bring_calls_as_history(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    backend = CannedBackend(["You asked about Rome."])
    client = make_client(make_engine(backend))
    conv = client.conversations.create()
    r = client.responses.create(model="gpt-4o", conversation=conv.id, input=[
        {"role": "user", "content": "Weather in Rome?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "12 C"},
        {"role": "assistant", "content": "It is mild."},
        {"role": "user", "content": "What did I ask?"}])
    assert r.output_text == "You asked about Rome."
    seen = backend.text(backend.prompts[-1])
    assert seen.index('{"city": "Rome"}') < seen.index("12 C") < seen.index("It is mild.") < seen.index("What did")
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output", "message", "message",
                                       "message"]


def test_an_item_id_given_twice_is_refused(any_client: openai.OpenAI) -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}"}
    conv = any_client.conversations.create(items=[call])
    with pytest.raises(openai.BadRequestError, match="Duplicate item"):
        any_client.conversations.items.create(conv.id, items=[call])
    with pytest.raises(openai.BadRequestError, match="Duplicate item"):
        any_client.conversations.create(items=[{**call, "id": "fc_2"}, {**call, "id": "fc_2"}])
    assert len(any_client.conversations.items.list(conv.id).data) == 1


def test_the_calls_a_response_makes_are_items_of_its_conversation(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    weather = {"type": "function", "name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    backend = CannedBackend([" call get_weather.", '{"city": "Oslo"}', "It is 17 C in Oslo.", "You asked about Oslo."])
    client = make_client(make_engine(backend))
    conv = client.conversations.create()
    r = client.responses.create(model="gpt-4o", input="Weather in Oslo?", conversation=conv.id,
                                tools=[weather])  # type: ignore[list-item]
    [call] = r.output
    listed = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in listed] == ["message", "function_call"] and listed[1].id == call.id
    done = client.responses.create(model="gpt-4o", conversation=conv.id, tools=[weather],  # type: ignore[list-item]
                                   input=[{"type": "function_call_output", "call_id": call.call_id, "output": "17 C"}])
    assert done.output_text == "It is 17 C in Oslo."
    seen = backend.text(backend.prompts[-1])
    assert seen.count('{"city": "Oslo"}') == 1 and seen.count("17 C") == 1  # each once: rows, not also exchanges
    listed = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in listed] == ["message", "function_call", "function_call_output", "message"]
    last = client.responses.create(model="gpt-4o", conversation=conv.id, input="What did I ask?")
    assert last.output_text == "You asked about Oslo."
    seen = backend.text(backend.prompts[-1])
    assert seen.index('{"city": "Oslo"}') < seen.index("17 C") < seen.index("It is 17 C in Oslo.") < seen.index(
        "What did I ask?")
