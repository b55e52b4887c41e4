"""Errors: every bad request answers with the real API's status and `error` envelope, changes nothing, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from sdk_errors import sdk_error

from offline_assistants.engine import Engine


def plain_http(client: openai.OpenAI) -> httpx2.Client:
    """Plain HTTP to the client's server, for bodies the SDK would never send."""
    return httpx2.Client(base_url=str(client.base_url), headers={"Authorization": "Bearer sk-local"})


@pytest.fixture
def raw(client: openai.OpenAI) -> Iterator[httpx2.Client]:
    with plain_http(client) as http:
        yield http


@pytest.fixture
def real_raw(real_client: openai.OpenAI) -> Iterator[httpx2.Client]:
    with plain_http(real_client) as http:
        yield http


def envelope(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "invalid_request_error"
    return error


JSON_HINT = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
             "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")


@pytest.mark.parametrize("body", [b"{bad", b'{"model": "gpt-4o",}', b"\xff\xfe\x00", b'{"model": "gpt-4o"'])
def test_malformed_json(raw: httpx2.Client, engine: Engine, body: bytes) -> None:
    for path in ("assistants", "threads"):
        error = envelope(raw.post(path, content=body, headers={"content-type": "application/json"}), 400)
        assert error == {"message": JSON_HINT, "type": "invalid_request_error", "param": None, "code": None}
    assert engine.store.database.query("SELECT id FROM assistants") == []
    assert engine.store.database.query("SELECT id FROM threads") == []


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers(raw: httpx2.Client, engine: Engine, number: bytes) -> None:
    body = b'{"model": "gpt-4o", "temperature": ' + number + b"}"
    error = envelope(raw.post("assistants", content=body, headers={"content-type": "application/json"}), 400)
    assert error["param"] == "temperature"
    assert "nan" not in error["message"] and "inf" not in error["message"]
    assert engine.store.database.query("SELECT id FROM assistants") == []


@pytest.mark.parametrize("body", [b"[]", b"null", b'"text"', b"42"])
def test_body_not_an_object(raw: httpx2.Client, body: bytes) -> None:
    error = envelope(raw.post("assistants", content=body, headers={"content-type": "application/json"}), 400)
    assert error["code"] == "invalid_type" and error["param"] is None
    assert "None" not in error["message"]


def test_wrong_type(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", name=123)  # type: ignore[arg-type]
    assert exc.value.status_code == 400
    assert sdk_error(exc) == {
        "message": "Invalid type for 'name': expected a string, but got an integer instead.",
        "type": "invalid_request_error", "param": "name", "code": "invalid_type",
    }
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", temperature="1")  # type: ignore[arg-type]
    assert (sdk_error(exc)["param"], exc.value.code) == ("temperature", "invalid_type")
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", metadata={"k": 1})  # type: ignore[dict-item]
    assert (sdk_error(exc)["param"], exc.value.code) == ("metadata.k", "invalid_type")
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", tools="code_interpreter")  # type: ignore[arg-type]
    assert (sdk_error(exc)["param"], exc.value.code) == ("tools", "invalid_type")


def test_out_of_range(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", temperature=3)
    assert sdk_error(exc) == {
        "message": "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
        "type": "invalid_request_error", "param": "temperature", "code": "decimal_above_max_value",
    }
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", top_p=-0.5)
    assert (sdk_error(exc)["param"], exc.value.code) == ("top_p", "decimal_below_min_value")
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.list(limit=101)
    assert sdk_error(exc) == {
        "message": "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 101 instead.",
        "type": "invalid_request_error", "param": "limit", "code": "integer_above_max_value",
    }
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", name="x" * 257)
    assert (sdk_error(exc)["param"], exc.value.code) == ("name", "string_above_max_length")
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}] * 129)
    assert (sdk_error(exc)["param"], exc.value.code) == ("tools", "array_above_max_length")


def test_unknown_parameter(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(model="gpt-4o", extra_body={"bogus": 1})
    assert sdk_error(exc) == {"message": "Unknown parameter: 'bogus'.", "type": "invalid_request_error",
                              "param": "bogus", "code": "unknown_parameter"}
    t = any_client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.threads.messages.create(t.id, role="user", content="x", extra_body={"file_ids": []})
    assert (sdk_error(exc)["param"], exc.value.code) == ("file_ids", "unknown_parameter")
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.threads.create(
            messages=[{"role": "user", "content": "x", "bogus": 1}])  # type: ignore[typeddict-unknown-key]
    assert (sdk_error(exc)["param"], exc.value.code) == ("messages[0].bogus", "unknown_parameter")
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.beta.assistants.create(
            model="gpt-4o", tools=[{"type": "code_interpreter", "x": 1}])  # type: ignore[typeddict-unknown-key]
    assert (sdk_error(exc)["param"], exc.value.code) == ("tools[0].x", "unknown_parameter")


def test_missing_required(any_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.post("/assistants", body={"name": "no model"}, cast_to=object)
    assert sdk_error(exc) == {"message": "Missing required parameter: 'model'.", "type": "invalid_request_error",
                              "param": "model", "code": "missing_required_parameter"}
    t = any_client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as exc:
        any_client.post(f"/threads/{t.id}/messages", body={"content": "no role"}, cast_to=object)
    assert (sdk_error(exc)["param"], exc.value.code) == ("role", "missing_required_parameter")


def test_nested_params_are_named_in_full(any_client: openai.OpenAI) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name", "invalid_value"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": 3}}]},
         "tools[0].function.parameters", "invalid_type"),
        ({"tools": [{"type": "bogus"}]}, "tools[0]", "invalid_value"),
        ({"tools": [{"type": "file_search", "file_search": {"max_num_results": 51}}]},
         "tools[0].file_search.max_num_results", "integer_above_max_value"),
        ({"tool_resources": {"file_search": {"vector_store_ids": ["a", "b"]}}},
         "tool_resources.file_search.vector_store_ids", "array_above_max_length"),
        ({"tool_resources": {"code_interpreter": {"file_ids": "file-1"}}},
         "tool_resources.code_interpreter.file_ids", "invalid_type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "missing_required_parameter"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "bad name"}}},
         "response_format.json_schema.name", "invalid_value"),
        ({"response_format": "bogus"}, "response_format", "invalid_value"),
    ]
    for extra, param, code in cases:
        with pytest.raises(openai.BadRequestError) as exc:
            any_client.post("/assistants", body={"model": "gpt-4o", **extra}, cast_to=object)
        body = sdk_error(exc)
        assert (body["param"], body["code"]) == (param, code), (extra, body)


def test_metadata_limits(any_client: openai.OpenAI, engine: Engine) -> None:
    too_many = {f"k{i}": "v" for i in range(17)}
    long_key = {"k" * 65: "v"}
    long_value = {"k": "v" * 513}
    t = any_client.beta.threads.create()
    m = any_client.beta.threads.messages.create(t.id, role="user", content="x")
    a = any_client.beta.assistants.create(model="gpt-4o")
    calls = [
        lambda md: any_client.beta.assistants.create(model="gpt-4o", metadata=md),
        lambda md: any_client.beta.assistants.update(a.id, metadata=md),
        lambda md: any_client.beta.threads.create(metadata=md),
        lambda md: any_client.beta.threads.update(t.id, metadata=md),
        lambda md: any_client.beta.threads.messages.create(t.id, role="user", content="x", metadata=md),
        lambda md: any_client.beta.threads.messages.update(m.id, thread_id=t.id, metadata=md),
    ]
    for call in calls:
        for md, code in ((too_many, "object_above_max_properties"), (long_key, "string_above_max_length"),
                         (long_value, "string_above_max_length")):
            with pytest.raises(openai.BadRequestError) as exc:
                call(md)
            body = sdk_error(exc)
            assert body["code"] == code and body["param"].startswith("metadata")
    # The limits themselves are fine.
    at_limit = {f"{i:0>64}": "v" * 512 for i in range(16)}
    assert any_client.beta.assistants.update(a.id, metadata=at_limit).metadata == at_limit
    counts = engine.store.database.query_one(
        "SELECT (SELECT COUNT(*) FROM assistants) AS a, (SELECT COUNT(*) FROM threads) AS t, "
        "(SELECT COUNT(*) FROM messages) AS m")
    assert counts == {"a": 1, "t": 1, "m": 1}
    assert any_client.beta.threads.messages.retrieve(m.id, thread_id=t.id).metadata == {}
    assert any_client.beta.threads.retrieve(t.id).metadata == {}


def test_not_found_for_each_kind(any_client: openai.OpenAI, engine: Engine) -> None:
    t = any_client.beta.threads.create()
    # A run row made straight in the store (no model involved), to ask it for a step it does not have.
    engine.store.runs.insert({"id": "run_here", "thread_id": t.id, "assistant_id": "asst_x", "created_at": 1,
                              "status": "completed", "model": "m"})
    cases = [
        (lambda: any_client.beta.threads.runs.retrieve("run_x", thread_id=t.id), "No run found with id 'run_x'."),
        (lambda: any_client.beta.threads.runs.steps.retrieve("step_x", thread_id=t.id, run_id="run_here"),
         "No run step found with id 'step_x'."),
        (lambda: any_client.beta.assistants.retrieve("asst_x"), "No assistant found with id 'asst_x'."),
        (lambda: any_client.beta.threads.retrieve("thread_x"), "No thread found with id 'thread_x'."),
        (lambda: any_client.beta.threads.messages.retrieve("msg_x", thread_id=t.id),
         "No message found with id 'msg_x'."),
        (lambda: any_client.files.retrieve("file-x"), "No file found with id 'file-x'."),
        (lambda: any_client.files.content("file-x"), "No file found with id 'file-x'."),
        (lambda: any_client.files.delete("file-x"), "No file found with id 'file-x'."),
    ]
    for call, message in cases:
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert exc.value.status_code == 404
        assert sdk_error(exc) == {"message": message, "type": "invalid_request_error", "param": None, "code": None}


def test_unknown_route(raw: httpx2.Client) -> None:
    error = envelope(raw.get("nope"), 404)
    assert error["message"] == "Invalid URL (GET /v1/nope)"
    envelope(raw.post("assistants/asst_x/bogus", json={}), 404)
    envelope(raw.get("/other"), 404)
    error = envelope(raw.put("assistants", json={}), 405)
    assert error["message"] == "Invalid method for URL (PUT /v1/assistants)"


def test_sdk_unknown_route(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client.get("/nope", cast_to=object)
    assert sdk_error(exc)["message"] == "Invalid URL (GET /v1/nope)"


FUZZ_BODIES: list[Any] = [
    {}, [], None, 0, "x", {"model": {}}, {"model": []}, {"model": "m", "tools": [None]}, {"model": "m", "tools": [1]},
    {"model": "m", "tools": [{}]}, {"model": "m", "tools": [{"type": None}]}, {"model": "m", "metadata": []},
    {"model": "m", "metadata": {"": ""}}, {"model": "m", "response_format": {}}, {"model": "m", "response_format": 1},
    {"model": "m", "tool_resources": {"code_interpreter": None}}, {"model": "m", "temperature": None},
    {"model": "m", "temperature": True}, {"model": "m", "temperature": 1e400}, {"model": "m", "top_p": "nan"},
    {"messages": None}, {"messages": [None]}, {"messages": [{}]}, {"messages": [{"role": "user", "content": [None]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": None}]}]},
    {"messages": [{"role": "user", "content": "x", "attachments": [{"file_id": 1}]}]},
    {"messages": [{"role": "user", "content": "x", "attachments": [{"file_id": "f", "tools": [{"type": "x"}]}]}]},
    {"role": "user", "content": "\u0000\ud800"}, {"metadata": {"k": None}}, {"tool_resources": []},
]


def test_never_a_500(raw: httpx2.Client) -> None:
    never_a_500(raw)


def test_never_a_500_on_the_real_tokenizer(real_raw: httpx2.Client) -> None:
    # The same bodies onto the real model: stored message text goes through its tokenizer, not the scripted one.
    never_a_500(real_raw)


def never_a_500(raw: httpx2.Client) -> None:
    thread_id = raw.post("threads", json={}).json()["id"]
    message_id = raw.post(f"threads/{thread_id}/messages", json={"role": "user", "content": "x"}).json()["id"]
    assistant_id = raw.post("assistants", json={"model": "m"}).json()["id"]
    paths = ["assistants", f"assistants/{assistant_id}", "threads", f"threads/{thread_id}",
             f"threads/{thread_id}/messages", f"threads/{thread_id}/messages/{message_id}"]
    for path in paths:
        for body in FUZZ_BODIES:
            r = raw.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
            assert r.status_code < 500, (path, body, r.text)
            if r.status_code >= 400:
                envelope(r, r.status_code)
    for query in ({"limit": "x"}, {"limit": "1.5"}, {"limit": "-1"}, {"order": ""}, {"after": ""}, {"before": "x"},
                  {"limit": "99999999999999999999999"}, {"run_id": ""}):
        for path in ("assistants", f"threads/{thread_id}/messages", "files"):
            r = raw.get(path, params=query)
            assert r.status_code < 500, (path, query, r.text)
    for path in ("files/..%2F..%2Fetc%2Fpasswd", "files/%00", "assistants/%20", "threads/'; DROP TABLE threads;--"):
        r = raw.get(path)
        assert r.status_code == 404, (path, r.text)
        envelope(r, 404)


def test_an_unknown_include_value_is_refused(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.steps.list("run_none", thread_id=thread.id,
                                            include=["step_details.everything"])  # type: ignore[list-item]
    assert isinstance(err.value.body, dict)
    assert (err.value.body["param"], err.value.body["code"]) == ("include[0]", "invalid_value")
