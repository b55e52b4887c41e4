"""The Responses face's streams beyond a plain `stream: true`: background streams resumed with `starting_after`
(while the run goes on, after it ended, after the server stopped mid-way), cancelling a background response, and
the WebSocket mode, all through the official SDK on a canned model (api/response_recording.py)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend

Client = Callable[..., openai.OpenAI]
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
LONG = " ".join(f"word{i}" for i in range(30)) + "."


@pytest.fixture
def canned(make_engine: Callable[..., Engine], make_client: Client) -> Callable[..., tuple[openai.OpenAI, Engine]]:
    def factory(replies: list[str], delay_s: float = 0.0) -> tuple[openai.OpenAI, Engine]:
        engine = make_engine(CannedBackend(replies, delay_s=delay_s))
        return make_client(engine), engine
    return factory


def dumped(events: Any) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in events]


def wait_until_ended(client: openai.OpenAI, response_id: str) -> Any:
    deadline = time.monotonic() + 30
    while (r := client.responses.retrieve(response_id)).status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, "the response never ended"
        time.sleep(0.02)
    return r


def test_a_background_stream_left_half_read_resumes_with_the_same_numbers(canned: Callable[..., Any]) -> None:
    client, _ = canned([LONG], delay_s=0.03)
    first: list[Any] = []
    with client.responses.create(model="gpt-4o", input="Talk.", background=True, stream=True) as stream:
        for event in stream:
            first.append(event)
            if event.type == "response.output_text.delta" and len(first) >= 8:
                break  # the client leaves mid-stream
    response_id = first[0].response.id
    assert client.responses.retrieve(response_id).status == "in_progress"  # it went on without its reader
    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=first[-1].sequence_number))
    assert rest[-1].type == "response.completed"
    whole = dumped(first) + dumped(rest)
    assert [e["sequence_number"] for e in whole] == list(range(len(whole)))  # no gap, no duplicate
    assert [e["type"] for e in whole[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert whole[0]["response"]["status"] == "queued" and whole[0]["response"]["background"] is True
    assert "".join(e["delta"] for e in whole if e["type"] == "response.output_text.delta") == LONG
    # Read again from the start once it ended: the very same events, from the store.
    assert dumped(client.responses.retrieve(response_id, stream=True)) == whole
    # The SDK's helper reads from the start and skips what the caller already has.
    with client.responses.stream(response_id=response_id, starting_after=first[-1].sequence_number) as again:
        assert [(e.type, e.sequence_number) for e in again] == [(e.type, e.sequence_number) for e in rest]
        assert again.get_final_response().output_text == LONG


def test_a_finished_response_replays_its_stream_even_after_a_restart(canned: Callable[..., Any],
                                                                    make_client: Client) -> None:
    client, engine = canned([" call get_weather.", '{"city": "Oslo"}'])
    r = client.responses.create(model="gpt-4o", input="Weather?", tools=[WEATHER],  # type: ignore[list-item]
                                background=True)
    assert r.status in ("queued", "in_progress", "completed") and r.background is True
    assert wait_until_ended(client, r.id).status == "completed"
    events = dumped(client.responses.retrieve(r.id, stream=True))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta") == (
        '{"city": "Oslo"}')
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["type"] == "function_call"
    assert dumped(client.responses.retrieve(r.id, stream=True, starting_after=3)) == events[4:]
    assert dumped(client.responses.retrieve(r.id, stream=True, starting_after=len(events) - 1)) == []
    # Another server process on the same data: the stored stream, number for number.
    again = Engine(Settings(data_dir=engine.settings.data_dir), CannedBackend())
    try:
        assert dumped(make_client(again).responses.retrieve(r.id, stream=True)) == events
    finally:
        again.close()


def test_a_stream_the_server_stopped_mid_way_is_closed_from_the_stored_response(canned: Callable[..., Any]) -> None:
    client, engine = canned(["Short and sweet."])
    r = client.responses.create(model="gpt-4o", input="Hi", background=True)
    wait_until_ended(client, r.id)
    events = dumped(client.responses.retrieve(r.id, stream=True))
    # As a server killed after storing its sixth event would leave it: the rest of the log never written.
    with sqlite3.connect(engine.settings.database) as db:
        db.execute("DELETE FROM response_events WHERE response_id = ? AND sequence_number > 5", (r.id,))
    closed = dumped(client.responses.retrieve(r.id, stream=True))
    assert closed[:6] == events[:6] and [e["sequence_number"] for e in closed] == list(range(7))
    assert closed[6]["type"] == "response.completed"
    assert closed[6]["response"]["output"][0]["content"][0]["text"] == "Short and sweet."
    assert dumped(client.responses.retrieve(r.id, stream=True)) == closed  # closed once, for every reader
    with client.responses.stream(response_id=r.id) as stream:
        assert stream.get_final_response().output_text == "Short and sweet."


def test_only_background_responses_stream_again(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Now."])
    r = client.responses.create(model="gpt-4o", input="Hi")
    with pytest.raises(openai.BadRequestError, match="background=true"):
        list(client.responses.retrieve(r.id, stream=True))
    with pytest.raises(openai.BadRequestError, match="starting_after"):
        client.get(f"/responses/{r.id}", cast_to=object, options={"params": {"stream": "true",
                                                                              "starting_after": "-1"}})
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve("resp_missing", stream=True))


def test_a_background_response_is_cancelled_mid_run_and_its_stream_ends(canned: Callable[..., Any]) -> None:
    client, engine = canned([LONG], delay_s=0.05)
    with client.responses.create(model="gpt-4o", input="Talk.", background=True, stream=True) as stream:
        events = []
        for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta":
                cancelled = client.responses.cancel(events[0].response.id)
                assert cancelled.status == "cancelled"
        assert events[-1].type == "response.failed" and events[-1].response.status == "cancelled"
    texts = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert texts and texts != LONG  # stopped before the reply's end
    assert client.responses.retrieve(events[0].response.id).status == "cancelled"
    assert engine.bus.listening() == 0  # the recording let go of the run's events


def test_a_background_response_goes_queued_in_progress_then_cancelled_without_a_stream(
        canned: Callable[..., Any]) -> None:
    client, _ = canned([LONG], delay_s=0.05)
    r = client.responses.create(model="gpt-4o", input="Talk.", background=True)
    assert r.status in ("queued", "in_progress")
    deadline = time.monotonic() + 10
    while client.responses.retrieve(r.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.responses.cancel(r.id).status == "cancelled"
    assert client.responses.cancel(r.id).status == "cancelled"  # again: nothing more to do
    events = dumped(client.responses.retrieve(r.id, stream=True))
    assert [e["type"] for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[-1]["type"] == "response.failed" and events[-1]["response"]["status"] == "cancelled"


# --- the WebSocket mode ---

def until_ended(connection: Any) -> list[Any]:
    """One response's frames, up to its terminal event (or an error frame)."""
    frames = []
    while True:
        frames.append(connection.recv())
        if frames[-1].type in ("response.completed", "response.incomplete", "response.failed", "error"):
            return frames


def test_a_websocket_streams_the_events_an_sse_stream_carries(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Hello over the socket.", "Hello over the socket."])
    with client.responses.connect() as connection:
        connection.response.create(model="gpt-4o", input="Hi", instructions="Be brief.")
        frames = until_ended(connection)
    sse = list(client.responses.create(model="gpt-4o", input="Hi", instructions="Be brief.", stream=True))
    assert [f.type for f in frames] == [e.type for e in sse]
    assert [f.sequence_number for f in frames] == list(range(len(frames)))
    assert "".join(f.delta for f in frames if f.type == "response.output_text.delta") == "Hello over the socket."
    final = frames[-1].response
    assert final.status == "completed" and final.output_text == "Hello over the socket."
    assert client.responses.retrieve(final.id).output_text == "Hello over the socket."  # stored as any response


def test_the_function_loop_over_one_websocket(canned: Callable[..., Any]) -> None:
    client, _ = canned([" call get_weather.", '{"city": "Oslo"}', "It is 17 C in Oslo."])
    with client.responses.connect() as connection:
        connection.response.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
        first = until_ended(connection)
        assert "".join(f.delta for f in first if f.type == "response.function_call_arguments.delta") == (
            '{"city": "Oslo"}')
        [call] = first[-1].response.output
        assert call.type == "function_call" and call.name == "get_weather"
        connection.response.create(model="gpt-4o", previous_response_id=first[-1].response.id,
                                   tools=[WEATHER],  # type: ignore[list-item]
                                   input=[{"type": "function_call_output", "call_id": call.call_id,
                                           "output": "17 C"}])
        second = until_ended(connection)
    assert second[0].type == "response.created" and second[0].sequence_number == 0  # each response from 0
    assert second[-1].type == "response.completed" and second[-1].response.output_text == "It is 17 C in Oslo."
    assert second[-1].response.previous_response_id == first[-1].response.id


def test_websocket_errors_leave_the_connection_open(canned: Callable[..., Any], make_engine: Callable[..., Engine],
                                                     make_client: Client) -> None:
    client, _ = canned(["Still here."])
    with client.responses.connect() as connection:
        connection.send_raw("{not json")
        [error] = until_ended(connection)
        assert error.type == "error" and error.status == 400 and error.error.code == "invalid_json"
        connection.send_raw('{"type": "response.steer", "input": "x"}')
        assert until_ended(connection)[0].error.param == "type"
        connection.response.create(model="gpt-4o", input="Hi", previous_response_id="resp_missing")
        [error] = until_ended(connection)
        assert error.status == 400 and error.error.code == "previous_response_not_found"
        connection.response.create(model="gpt-4o", input="Hi", temperature=7)
        assert until_ended(connection)[0].error.param == "temperature"
        connection.response.create(model="gpt-4o", input="Hi", background=True, stream_id="lane-a")
        [error] = until_ended(connection)
        assert error.error.param == "background" and error.stream_id == "lane-a"
        connection.response.create(model="gpt-4o", input="Hi")
        assert until_ended(connection)[-1].response.output_text == "Still here."
    locked = make_client(make_engine(CannedBackend()), server_api_key="sk-right", api_key="sk-wrong")
    with pytest.raises(Exception, match="401"):
        locked.responses.connect().enter()


def test_websocket_lanes_echo_their_stream_id(canned: Callable[..., Any]) -> None:
    client, _ = canned(["On lane a.", "On lane b."])
    with client.responses.connect() as connection:
        connection.response.create(model="gpt-4o", input="a", stream_id="a")
        connection.response.create(model="gpt-4o", input="b", stream_id="b")
        done: dict[str, Any] = {}
        while len(done) < 2:
            frame = connection.recv()
            assert frame.stream_id in ("a", "b")
            if frame.type == "response.completed":
                done[frame.stream_id] = frame.response
    assert sorted(r.output_text for r in done.values()) == ["On lane a.", "On lane b."]


def test_store_false_lives_as_long_as_its_websocket(canned: Callable[..., Any]) -> None:
    client, _ = canned(["Noted: Ada.", "You are Ada."])
    with client.responses.connect() as connection:
        connection.response.create(model="gpt-4o", input="I am Ada.", store=False)
        first = until_ended(connection)[-1].response
        connection.response.create(model="gpt-4o", input="Who am I?", store=False, previous_response_id=first.id)
        second = until_ended(connection)[-1].response
        assert second.output_text == "You are Ada." and second.store is False
    deadline = time.monotonic() + 10
    while True:  # the server forgets them once it has seen the connection close
        try:
            client.responses.retrieve(second.id)
        except openai.NotFoundError:
            break
        assert time.monotonic() < deadline, "a store: false response outlived its connection"
        time.sleep(0.02)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
