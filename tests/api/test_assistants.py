"""Assistants over the official SDK: create with every field, list, retrieve, update, delete."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from sdk_errors import sdk_error

from offline_assistants.engine import Engine

FUNCTION_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def expect_error(exc: pytest.ExceptionInfo[openai.APIStatusError], status: int, *, code: str | None = None,
                 param: str | None = None, message: str | None = None) -> dict[str, Any]:
    assert exc.value.status_code == status
    body = sdk_error(exc)
    assert body["code"] == code
    assert body["param"] == param
    if message is not None:
        assert body["message"] == message
    return body


def test_create_with_every_field(any_client: openai.OpenAI) -> None:
    a = any_client.beta.assistants.create(
        model="gpt-4o",
        name="Math Tutor",
        description="Helps with maths.",
        instructions="You are a personal math tutor.",
        tools=[{"type": "code_interpreter"}, {"type": "file_search"}, FUNCTION_TOOL],  # type: ignore[list-item]
        metadata={"team": "algebra", "level": "2"},
        temperature=0.7,
        top_p=0.9,
        response_format={"type": "json_object"},
    )
    assert a.id.startswith("asst_")
    assert a.object == "assistant"
    assert a.model == "gpt-4o"  # echoed as sent, whatever model serves it
    assert a.name == "Math Tutor"
    assert a.description == "Helps with maths."
    assert a.instructions == "You are a personal math tutor."
    assert [t.type for t in a.tools] == ["code_interpreter", "file_search", "function"]
    fn = a.tools[2]
    assert fn.type == "function"
    assert fn.function.name == "get_weather"
    assert fn.function.description == "The weather in a city."
    assert fn.function.parameters == FUNCTION_TOOL["function"]["parameters"]
    assert a.metadata == {"team": "algebra", "level": "2"}
    assert a.temperature == pytest.approx(0.7)
    assert a.top_p == pytest.approx(0.9)
    assert a.response_format is not None and a.response_format != "auto"
    assert a.response_format.type == "json_object"  # type: ignore[union-attr]
    assert a.created_at > 1_600_000_000

    again = any_client.beta.assistants.retrieve(a.id)
    assert again == a


def test_create_minimal_has_defaults(any_client: openai.OpenAI) -> None:
    a = any_client.beta.assistants.create(model="gpt-4o")
    assert a.model == "gpt-4o"
    assert a.name is None and a.description is None and a.instructions is None
    assert a.tools == []
    assert a.metadata == {}
    assert a.tool_resources is None
    assert a.response_format == "auto"
    b = any_client.beta.assistants.create(model="gpt-4o", response_format="auto")
    assert b.response_format == "auto"


def test_create_with_json_schema_and_tool_resources(client: openai.OpenAI) -> None:
    f = client.files.create(file=("data.csv", b"x,y\n1,2\n"), purpose="assistants")
    a = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [f.id]}},
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    )
    assert a.tool_resources is not None and a.tool_resources.code_interpreter is not None
    assert a.tool_resources.code_interpreter.file_ids == [f.id]
    rf = a.response_format
    assert rf is not None and rf != "auto" and rf.type == "json_schema"  # type: ignore[union-attr]
    assert rf.json_schema.name == "answer"  # type: ignore[union-attr]
    assert rf.json_schema.schema_ == {"type": "object"}  # type: ignore[union-attr]


def test_create_with_unknown_file_in_tool_resources_is_refused(client: openai.OpenAI, engine: Engine) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client.beta.assistants.create(model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": ["file-nope"]}})
    body = exc.value.body
    assert isinstance(body, dict) and body["message"] == "No file found with id 'file-nope'."
    assert body["param"] == "tool_resources.code_interpreter.file_ids"
    assert engine.store.database.query("SELECT id FROM assistants") == []


def test_list(any_client: openai.OpenAI) -> None:
    created = [any_client.beta.assistants.create(model="gpt-4o", name=f"a{i}").id for i in range(5)]
    page = any_client.beta.assistants.list()
    assert [a.id for a in page.data] == created[::-1]  # newest first by default
    assert page.has_more is False
    asc = any_client.beta.assistants.list(order="asc", limit=2)
    assert [a.id for a in asc.data] == created[:2]
    assert asc.has_more is True
    assert [a.id for a in any_client.beta.assistants.list(order="asc")] == created


def test_retrieve(any_client: openai.OpenAI) -> None:
    a = any_client.beta.assistants.create(model="gpt-4o", name="R")
    got = any_client.beta.assistants.retrieve(a.id)
    assert got.id == a.id and got.name == "R" and got.created_at == a.created_at


def test_update_is_partial_and_merges_metadata(any_client: openai.OpenAI) -> None:
    a = any_client.beta.assistants.create(
        model="gpt-4o", name="Before", instructions="Stay.", description="d", tools=[{"type": "code_interpreter"}],
        metadata={"a": "1", "b": "2"}, temperature=0.5,
    )
    u = any_client.beta.assistants.update(a.id, name="After", metadata={"c": "3"})
    assert u.id == a.id
    assert u.name == "After"
    assert u.metadata == {"a": "1", "b": "2", "c": "3"}  # merged, as the hosted API does
    assert u.instructions == "Stay." and u.description == "d"
    assert u.model == "gpt-4o"
    assert [t.type for t in u.tools] == ["code_interpreter"]
    assert u.temperature == pytest.approx(0.5)
    assert u.created_at == a.created_at
    assert any_client.beta.assistants.retrieve(a.id) == u

    u2 = any_client.beta.assistants.update(a.id, model="gpt-4o-mini", tools=[FUNCTION_TOOL],  # type: ignore[list-item]
                                           top_p=0.2,
                                           response_format={"type": "json_object"})
    assert u2.model == "gpt-4o-mini"
    assert [t.type for t in u2.tools] == ["function"]
    assert u2.top_p == pytest.approx(0.2)
    assert u2.name == "After" and u2.metadata == {"a": "1", "b": "2", "c": "3"}

    u3 = any_client.beta.assistants.update(a.id, tools=[], metadata={})
    assert u3.tools == [] and u3.metadata == {"a": "1", "b": "2", "c": "3"}  # nothing given, nothing changed
    full = {f"k{i}": "v" for i in range(13)}
    with pytest.raises(openai.BadRequestError) as exc:  # 3 + 14 keys: over 16 once merged
        any_client.beta.assistants.update(a.id, metadata={**full, "k13": "v"})
    assert exc.value.body["param"] == "metadata"  # type: ignore[index]
    assert any_client.beta.assistants.retrieve(a.id).metadata == u3.metadata


def test_failed_update_changes_nothing(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="gpt-4o", name="Same", metadata={"k": "v"}, temperature=1.0)
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.assistants.update(a.id, name="Changed", temperature=3)
    expect_error(exc, 400, param="temperature", code="decimal_above_max_value")
    with pytest.raises(openai.BadRequestError):
        client.beta.assistants.update(a.id, name="Changed", metadata={f"k{i}": "v" for i in range(17)})
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.update(a.id, name="Changed",
                                      tool_resources={"code_interpreter": {"file_ids": ["file-x"]}})
    assert client.beta.assistants.retrieve(a.id) == a


def test_delete(any_client: openai.OpenAI) -> None:
    a = any_client.beta.assistants.create(model="gpt-4o")
    d = any_client.beta.assistants.delete(a.id)
    assert d.id == a.id and d.object == "assistant.deleted" and d.deleted is True
    with pytest.raises(openai.NotFoundError) as exc:
        any_client.beta.assistants.retrieve(a.id)
    expect_error(exc, 404, message=f"No assistant found with id '{a.id}'.")
    with pytest.raises(openai.NotFoundError):
        any_client.beta.assistants.delete(a.id)
    assert a.id not in [x.id for x in any_client.beta.assistants.list()]


def test_missing_assistant_message(client: openai.OpenAI) -> None:
    for call in (lambda: client.beta.assistants.retrieve("asst_x"),
                 lambda: client.beta.assistants.update("asst_x", name="n"),
                 lambda: client.beta.assistants.delete("asst_x")):
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        expect_error(exc, 404, message="No assistant found with id 'asst_x'.")
