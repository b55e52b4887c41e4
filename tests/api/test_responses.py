"""The Responses API over the official SDK, on a canned model (the state machine: chains, forks, the function
loop, streams, storage, errors). The real model's path is tests/api/test_responses_real.py."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import JsonSchema
from offline_assistants.llm.canned import CannedBackend

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
Client = Callable[..., openai.OpenAI]


@pytest.fixture
def canned(make_engine: Callable[..., Engine], make_client: Client) -> Callable[..., tuple[openai.OpenAI, Any]]:
    def factory(replies: list[str], **settings: Any) -> tuple[openai.OpenAI, Any]:
        backend = CannedBackend(replies)
        return make_client(make_engine(backend, **settings)), backend
    return factory


def test_a_response_answers_and_reads_back(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Hello there!"])
    r = client.responses.create(model="gpt-4o", input="Hi", instructions="Be brief.", metadata={"k": "v"})
    assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed"
    assert r.output_text == "Hello there!" and r.model == "gpt-4o" and r.instructions == "Be brief."
    assert r.metadata == {"k": "v"} and r.previous_response_id is None and r.store is True
    [message] = r.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert r.usage is not None and r.usage.output_tokens > 0 and r.usage.total_tokens == (
        r.usage.input_tokens + r.usage.output_tokens)
    again = client.responses.retrieve(r.id)
    assert again.output_text == "Hello there!" and again.usage == r.usage
    [item] = client.responses.input_items.list(r.id).data
    assert item.type == "message" and item.role == "user" and item.content[0].text == "Hi"  # type: ignore[union-attr]


def test_a_chain_carries_its_context_and_a_fork_sees_only_its_own(canned: Callable[..., Any]) -> None:
    client, backend = canned(["Nice to meet you, Ada.", "Your name is Ada.", "You like tea."])
    first = client.responses.create(model="gpt-4o", input="I am Ada.")
    second = client.responses.create(model="gpt-4o", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "Your name is Ada."
    assert "I am Ada." in backend.text(backend.prompts[-1]) and "Nice to meet you" in backend.text(backend.prompts[-1])
    fork = client.responses.create(model="gpt-4o", input="What do I like?", previous_response_id=first.id)
    seen = backend.text(backend.prompts[-1])
    assert "I am Ada." in seen and "What is my name?" not in seen  # the other branch is not in this one
    assert fork.output_text == "You like tea."
    # instructions are not carried along a chain
    assert client.responses.retrieve(second.id).instructions is None


def test_the_function_loop(canned: Callable[..., Any]) -> None:
    client, backend = canned([" call get_weather.", '{"city": "Oslo"}', "It is 17 C in Oslo."])
    r = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
    assert r.status == "completed"
    [call] = r.output
    assert call.type == "function_call" and call.name == "get_weather" and call.arguments == '{"city": "Oslo"}'
    with pytest.raises(openai.BadRequestError, match="No tool output found for function call"):
        client.responses.create(model="gpt-4o", input="And?", previous_response_id=r.id)
    with pytest.raises(openai.BadRequestError, match="No tool call found for function call output"):
        client.responses.create(model="gpt-4o", previous_response_id=r.id, input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "17 C"},
            {"type": "function_call_output", "call_id": "call_nope", "output": "1"}])
    done = client.responses.create(model="gpt-4o", previous_response_id=r.id, tools=[WEATHER],  # type: ignore[list-item]
                                   input=[{"type": "function_call_output", "call_id": call.call_id,
                                           "output": "17 C"}])
    assert done.output_text == "It is 17 C in Oslo." and [o.type for o in done.output] == ["message"]
    assert "17 C" in backend.text(backend.prompts[-1])
    assert client.responses.retrieve(r.id).output[0].type == "function_call"  # the first keeps its own output
    [item] = client.responses.input_items.list(done.id).data
    assert item.type == "function_call_output" and item.call_id == call.call_id


def test_a_response_ending_with_function_calls_has_its_usage(canned: Callable[..., Any]) -> None:
    # Its run waits for the outputs (an Assistants run shows no usage then), but the response is over: the Agents
    # SDK adds up each response's usage.
    client, _ = canned([" call get_weather.", '{"city": "Oslo"}', " call get_weather.", '{"city": "Rome"}'])
    r = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
    assert r.output[0].type == "function_call"
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert client.responses.retrieve(r.id).usage == r.usage
    events = list(client.responses.create(model="gpt-4o", input="Weather in Rome?", tools=[WEATHER],  # type: ignore[list-item]
                                          stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.usage is not None
    assert events[-1].response.usage.output_tokens > 0


def test_calls_brought_as_history_are_read_back(canned: Callable[..., Any]) -> None:
    client, backend = canned(["It is 12 C in Rome."])
    r = client.responses.create(model="gpt-4o", input=[
        {"role": "user", "content": "Weather in Rome?"},
        {"type": "function_call", "call_id": "call_abc", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "call_abc", "output": "12 C"}])
    assert r.output_text == "It is 12 C in Rome." and [o.type for o in r.output] == ["message"]
    assert "12 C" in backend.text(backend.prompts[-1])


def test_calls_in_the_middle_of_the_history_stay_in_their_place(canned: Callable[..., Any]) -> None:
    # What the Agents SDK sends on a later turn (a session's items, or result.to_input_list()): an earlier turn's
    # call and output sit between its question and its answer, and the model reads them there.
    client, backend = canned(["You asked about Oslo.", "You are welcome."])
    history: list[Any] = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "id": "fc_abc", "call_id": "call_abc", "name": "get_weather",
         "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_abc", "output": "17 C"},
        {"role": "assistant", "content": "It is mild in Oslo."},
        {"role": "user", "content": "What did I ask?"}]
    r = client.responses.create(model="gpt-4o", input=history)
    assert r.output_text == "You asked about Oslo."
    seen = backend.text(backend.prompts[-1])
    assert seen.index("Weather in Oslo?") < seen.index('"Oslo"}') < seen.index("17 C") < seen.index(
        "It is mild in Oslo.") < seen.index("What did I ask?")
    assert seen.rstrip().endswith("What did I ask? </s> <assistant>")  # nothing after the question
    items = client.responses.input_items.list(r.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output", "message", "message"]
    # The next turn sends the same history again, item ids and all, as the Agents SDK does.
    again = client.responses.create(model="gpt-4o", input=[*history, *(i.model_dump() for i in r.output),
                                                           {"role": "user", "content": "Thanks."}])
    assert again.status == "completed"


def test_streams_as_the_sdk_accumulates_them(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Hello there, friend!", " call get_weather.", '{"city": "Oslo"}'])
    with client.responses.stream(model="gpt-4o", input="Hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert final.output_text == "Hello there, friend!"
    events = list(client.responses.create(model="gpt-4o", input="Weather?", tools=[WEATHER],  # type: ignore[list-item]
                                          stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert args == '{"city": "Oslo"}'
    assert events[-1].type == "response.completed"
    assert events[-1].response.output[0].type == "function_call"


def test_file_search_cites_without_markers_in_the_text(canned: Callable[..., Any]) -> None:
    # The Assistants face keeps file search's 【0:0†notes.md】 markers in the text; the real Responses API strips
    # them and points each file_citation at where its marker was (`index`), streamed as it stores.
    search = [" search the files.", '{"query": "staging server"}']
    client, _ = canned([*search, "It is heliotrope 【0:0†notes.md】.", *search, "It is called heliotrope.",
                        *search, "It is heliotrope 【0:0†notes.md】 in Lisbon."])
    store = client.vector_stores.create(name="notes")
    notes = b"The staging server is called heliotrope and runs in Lisbon.\n"
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("notes.md", io.BytesIO(notes)))
    tools: Any = [{"type": "file_search", "vector_store_ids": [store.id]}]
    r = client.responses.create(model="gpt-4o", input="What is the staging server called?", tools=tools)
    search_call, message = r.output
    assert search_call.type == "file_search_call" and message.type == "message"
    [part] = message.content
    assert part.type == "output_text" and part.text == "It is heliotrope."
    assert [(a.type, a.file_id, a.filename, a.index) for a in part.annotations] == [  # type: ignore[union-attr]
        ("file_citation", done.id, "notes.md", len("It is heliotrope"))]
    # Streamed: a marker the server adds (the answer cited nothing), and one the model wrote mid-sentence.
    for expected, index in [("It is called heliotrope.", len("It is called heliotrope.")),
                            ("It is heliotrope in Lisbon.", len("It is heliotrope"))]:
        with client.responses.stream(model="gpt-4o", input="What is the staging server called?",
                                     tools=tools) as stream:
            events = list(stream)
            final = stream.get_final_response()
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        [done_event] = [e for e in events if e.type == "response.output_text.done"]
        assert text == done_event.text == final.output_text == expected
        [added] = [e for e in events if e.type == "response.output_text.annotation.added"]
        assert added.annotation.model_dump() == {"type": "file_citation", "file_id": done.id,
                                                 "filename": "notes.md", "index": index}


def test_file_search_filters_choose_the_files_searched(canned: Callable[..., Any]) -> None:
    # As the Agents SDK's FileSearchTool(filters=...) sends them: on the files' attributes, not dropped.
    search = [" search the files.", '{"query": "staging server"}', "Found it."]
    client, backend = canned(search * 2)
    store = client.vector_stores.create(name="notes")
    for name, team, text in [("ops.md", "ops", b"The staging server is called heliotrope."),
                             ("web.md", "web", b"The staging server is called marigold.")]:
        file = client.files.create(file=(name, io.BytesIO(text)), purpose="assistants")
        client.vector_stores.files.create_and_poll(vector_store_id=store.id, file_id=file.id, attributes={"team": team})
    for team, found, other in [("ops", "heliotrope", "marigold"), ("web", "marigold", "heliotrope")]:
        r = client.responses.create(model="gpt-4o", input="What is the staging server called?",
                                    include=["file_search_call.results"], tools=[{
                                        "type": "file_search", "vector_store_ids": [store.id],
                                        "filters": {"type": "eq", "key": "team", "value": team}}])
        call = r.output[0]
        assert call.type == "file_search_call" and [h.filename for h in call.results or []] == [f"{team}.md"]
        assert found in backend.text(backend.prompts[-1]) and other not in backend.text(backend.prompts[-1])
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-4o", input="Hi", tools=[{
            "type": "file_search", "vector_store_ids": [store.id], "filters": {"type": "like", "key": "team"}}])
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "tools[0].filters.type"


def test_store_false_keeps_nothing(canned: Callable[..., Any], make_engine: Callable[..., Engine]) -> None:
    client, _ = canned(["Fine."])
    r = client.responses.create(model="gpt-4o", input="Hi", store=False)
    assert r.output_text == "Fine." and r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_background_responses_are_polled_and_only_they_cancel(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Later."])
    r = client.responses.create(model="gpt-4o", input="Hi", background=True)
    assert r.background is True and r.status in ("queued", "in_progress", "completed")
    for _ in range(200):
        r = client.responses.retrieve(r.id)
        if r.status == "completed":
            break
    assert r.output_text == "Later."
    plain = client.responses.create(model="gpt-4o", input="Hi again")
    with pytest.raises(openai.BadRequestError, match="background=true"):
        client.responses.cancel(plain.id)


def test_deleted_responses_are_gone(canned: Callable[..., Any]) -> None:
    client, _ = canned(["One."])
    r = client.responses.create(model="gpt-4o", input="Hi")
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_text_format_holds_the_reply_to_the_schema(canned: Callable[..., Any]) -> None:
    client, backend = canned(['{"name": "Ada"}'])
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}
    r = client.responses.create(model="gpt-4o", input="Name?", text={"format": {
        "type": "json_schema", "name": "person", "schema": schema, "strict": True}})
    assert r.output_text == '{"name": "Ada"}'
    assert isinstance(backend.samplings[-1].constraint, JsonSchema)
    assert backend.samplings[-1].constraint.schema == schema


@pytest.mark.parametrize(("body", "param", "says"), [
    ({"input": "Hi", "tools": [{"type": "web_search"}]}, "tools[0].type", "not available on this offline server"),
    ({"input": "Hi", "model": None}, "model", "Missing required parameter"),
    ({"input": "Hi", "previous_response_id": "resp_x", "conversation": "conv_x"}, None, "Mutually exclusive"),
    ({"input": "Hi", "previous_response_id": "resp_nope"}, "previous_response_id", "not found"),
    ({"input": [{"type": "function_call_output", "call_id": "call_1", "output": "1"}]}, "input", "No tool call"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0]", "not supported"),
    ({"input": "Hi", "temperature": 3}, "temperature", ""),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": 5}]}]}, "input[0].content", ""),
    ({"input": "Hi", "text": {"format": "json"}}, "text.format", ""),
    ({"input": "Hi", "tools": [{"type": "custom", "name": "x", "format": "lark"}]}, "tools[0].format", ""),
    ({"input": "Hi", "unknown_field": 1}, "unknown_field", ""),
])
def test_bad_requests_get_the_real_400(engine: Engine, make_client: Client, body: dict[str, Any],
                                       param: str | None, says: str) -> None:
    client = make_client(engine)
    payload = {"model": "gpt-4o", **body}
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/responses", body=payload, cast_to=object)
    error = info.value.body
    assert isinstance(error, dict) and error["param"] == param and says in error["message"]
    assert engine.store.database.query_one("SELECT count(*) AS n FROM runs") == {"n": 0}


def test_an_overflow_is_refused_unless_truncation_is_auto(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Short."])
    long = "word " * 4000  # the canned model's window is 4,096 tokens, a word each
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-4o", input=long)
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "context_length_exceeded"
    r = client.responses.create(model="gpt-4o", input=long, truncation="auto")
    assert r.status == "completed" and r.truncation == "auto"


def test_input_tokens_are_counted(canned: Callable[..., Any]) -> None:
    client, _ = canned([])
    small = client.responses.input_tokens.count(model="gpt-4o", input="Hi")
    big = client.responses.input_tokens.count(model="gpt-4o", input="Hi there, how are you today?")
    assert 0 < small.input_tokens < big.input_tokens


def test_a_custom_tool_takes_free_form_input_held_to_its_regex(canned: Callable[..., Any]) -> None:
    client, backend = canned(['{"input": "2024-05-01"}', "Booked for May 1st."])
    tool = {"type": "custom", "name": "book", "description": "Book a day, given as YYYY-MM-DD.",
            "format": {"type": "grammar", "syntax": "regex", "definition": r"\d{4}-\d{2}-\d{2}"}}
    r = client.responses.create(model="gpt-4o", input="Book May 1st 2024.", tools=[tool],  # type: ignore[list-item]
                                tool_choice={"type": "custom", "name": "book"})
    [call] = r.output
    assert call.type == "custom_tool_call" and call.name == "book" and call.input == "2024-05-01"
    constraint = backend.samplings[-1].constraint
    assert isinstance(constraint, JsonSchema) and constraint.schema["properties"]["input"]["pattern"]
    done = client.responses.create(model="gpt-4o", previous_response_id=r.id, input=[
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "booked"}])
    assert done.output_text == "Booked for May 1st." and "booked" in backend.text(backend.prompts[-1])
    events = list(client.responses.create(model="gpt-4o", input="Again.", tools=[tool],  # type: ignore[list-item]
                                          tool_choice="required", stream=True))
    assert [e.type for e in events if "custom_tool_call_input" in e.type] == [
        "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done"]


def test_input_files_are_read_by_the_model(canned: Callable[..., Any]) -> None:
    import base64

    client, backend = canned(["It opens at nine.", "It closes at five."])
    file = client.files.create(file=("hours.txt", b"The office opens at nine."), purpose="user_data")
    client.responses.create(model="gpt-4o", input=[{"role": "user", "content": [
        {"type": "input_file", "file_id": file.id}, {"type": "input_text", "text": "When does it open?"}]}])
    assert "The office opens at nine." in backend.text(backend.prompts[-1])
    data = base64.b64encode(b"The office closes at five.").decode()
    client.responses.create(model="gpt-4o", input=[{"role": "user", "content": [
        {"type": "input_file", "filename": "close.txt", "file_data": f"data:text/plain;base64,{data}"},
        {"type": "input_text", "text": "When does it close?"}]}])
    assert "The office closes at five." in backend.text(backend.prompts[-1])
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": "file-nope"}]}])


def test_parse_with_a_pydantic_model(canned: Callable[..., Any]) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    client, backend = canned(['{"name": "Oslo", "population": 709000}'])
    parsed = client.responses.parse(model="gpt-4o", input="Biggest city in Norway?", text_format=City)
    assert parsed.output_parsed == City(name="Oslo", population=709000)
    constraint = backend.samplings[-1].constraint
    assert isinstance(constraint, JsonSchema) and constraint.schema["required"] == ["name", "population"]


def test_an_item_reference_reads_the_stored_item(canned: Callable[..., Any]) -> None:
    client, backend = canned(["Noted.", "You said you are Ada."])
    first = client.responses.create(model="gpt-4o", input="I am Ada.")
    [said] = client.responses.input_items.list(first.id).data
    client.responses.create(model="gpt-4o", input=[{"type": "item_reference", "id": said.id},
                                                   {"role": "user", "content": "Who am I?"}])
    assert "I am Ada." in backend.text(backend.prompts[-1])
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input=[{"type": "item_reference", "id": "msg_nope"}])


def test_allowed_tools_narrow_what_may_be_called(canned: Callable[..., Any]) -> None:
    client, backend = canned(['{"city": "Oslo"}', "Done."])
    other = {**WEATHER, "name": "get_time", "description": "The time in a city"}
    r = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER, other],  # type: ignore[list-item]
                                tool_choice={"type": "allowed_tools", "mode": "required",
                                             "tools": [{"type": "function", "name": "get_weather"}]})
    [call] = r.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert "get_time" not in backend.text(backend.prompts[0])


def test_input_tokens_are_what_the_model_reads(canned: Callable[..., Any]) -> None:
    client, backend = canned(["Hi."])
    counted = client.responses.input_tokens.count(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER],  # type: ignore[list-item]
                                                  instructions="Be brief.", tool_choice="none")
    described = client.responses.input_tokens.count(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER],  # type: ignore[list-item]
                                                    instructions="Be brief.")
    assert described.input_tokens > counted.input_tokens  # the tools' descriptions count too
    r = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER],  # type: ignore[list-item]
                                instructions="Be brief.", tool_choice="none")
    prompt = len(backend.prompts[-1]) - len(backend.generation_prefix())
    assert counted.input_tokens == prompt and r.usage is not None


def test_what_store_false_leaves_is_swept(make_engine: Callable[..., Engine],
                                          make_client: Callable[..., openai.OpenAI]) -> None:
    import time

    from offline_assistants.engine.responses import UNKEPT_S

    engine = make_engine(CannedBackend(["Later."]))
    client = make_client(engine)
    r = client.responses.create(model="gpt-4o", input="Hi", store=False, background=True)
    for _ in range(200):  # a background response is read by polling, until the sweep
        if client.responses.retrieve(r.id).status == "completed":
            break
        time.sleep(0.02)
    engine.responses.sweep(int(time.time()))
    assert client.responses.retrieve(r.id).output_text == "Later."  # not yet: it is kept for a while
    engine.responses.sweep(int(time.time()) + UNKEPT_S + 1)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    assert engine.store.database.query_one("SELECT count(*) AS n FROM threads") == {"n": 0}


def test_a_chain_never_reads_what_came_after_its_response(canned: Callable[..., Any]) -> None:
    client, backend = canned(["A1.", "B1.", "C1.", " call get_weather.", '{"city": "Oslo"}', "SECRET-ANSWER.",
                              "D1."])
    first = client.responses.create(model="gpt-4o", input="Q1")
    second = client.responses.create(model="gpt-4o", input="Q2", previous_response_id=first.id)
    client.responses.delete(second.id)
    client.responses.create(model="gpt-4o", input="Q3", previous_response_id=first.id)
    seen = backend.text(backend.prompts[-1])
    assert "Q1" in seen and "Q2" not in seen and "B1." not in seen  # the deleted turn is not in this chain
    # A fork from a response that ended in a call does not see the answer the next response wrote.
    asked = client.responses.create(model="gpt-4o", input="Weather?", tools=[WEATHER])  # type: ignore[list-item]
    [call] = asked.output
    client.responses.create(model="gpt-4o", previous_response_id=asked.id, tools=[WEATHER],  # type: ignore[list-item]
                            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "17 C"}])
    client.responses.create(model="gpt-4o", previous_response_id=asked.id, input="Q4")
    seen = backend.text(backend.prompts[-1])
    assert "Weather?" in seen and "SECRET-ANSWER." not in seen


def test_a_refused_response_leaves_nothing_behind(canned: Callable[..., Any], make_engine: Callable[..., Engine],
                                                  make_client: Callable[..., openai.OpenAI]) -> None:
    engine = make_engine(CannedBackend(["Short."]))
    client = make_client(engine)
    first = client.responses.create(model="gpt-4o", input="Hi")
    threads = engine.store.database.query_one("SELECT count(*) AS n FROM threads")
    for previous in (None, first.id):
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="gpt-4o", input="word " * 3000, previous_response_id=previous)
    assert engine.store.database.query_one("SELECT count(*) AS n FROM threads") == threads


def test_the_response_that_brings_outputs_goes_on_with_its_own_request(canned: Callable[..., Any]) -> None:
    client, backend = canned([" call get_weather.", '{"city": "Oslo"}', "It is 17 C."])
    r = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER],  # type: ignore[list-item]
                                instructions="FIRST-INSTRUCTIONS")
    [call] = r.output
    done = client.responses.create(model="gpt-4o", previous_response_id=r.id, tools=[WEATHER],  # type: ignore[list-item]
                                   instructions="SECOND-INSTRUCTIONS", temperature=0.5, input=[
                                       {"type": "function_call_output", "call_id": call.call_id, "output": "17 C"},
                                       {"role": "user", "content": "In Celsius please."}])
    seen = backend.text(backend.prompts[-1])
    assert "SECOND-INSTRUCTIONS" in seen and "FIRST-INSTRUCTIONS" not in seen and "In Celsius please." in seen
    assert done.instructions == "SECOND-INSTRUCTIONS" and done.temperature == 0.5 and done.tools
