"""Runs on the real embedded model, through the official SDK over loopback HTTP: the seed's step 4, streaming,
cancel, the lifecycle's 400s, budgets."""

from __future__ import annotations

import json
import time
import urllib.request

import openai
import pytest
from openai import AssistantEventHandler
from typing_extensions import override

QUESTION = "I need to solve the equation `3x + 11 = 14`. Can you help me?"


@pytest.fixture
def tutor(real_client: openai.OpenAI) -> tuple[str, str]:
    assistant = real_client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor. Write and run code to answer math questions.",
        model="gpt-4o",
        temperature=0,
    )
    thread = real_client.beta.threads.create()
    real_client.beta.threads.messages.create(thread_id=thread.id, role="user", content=QUESTION)
    return assistant.id, thread.id


def test_seed_create_and_poll(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    run = real_client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        instructions="Please address the user as Jane Doe. The user has a premium account.",
        max_completion_tokens=40,
    )
    assert run.status in ("completed", "incomplete")
    assert run.model == "gpt-4o"
    messages = real_client.beta.threads.messages.list(thread_id=thread_id)
    reply = messages.data[0]
    assert reply.role == "assistant" and reply.run_id == run.id
    assert reply.content[0].type == "text" and reply.content[0].text.value.strip()
    steps = real_client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id)
    assert steps.data[0].type == "message_creation"
    assert steps.data[0].step_details.message_creation.message_id == reply.id  # type: ignore[union-attr]


def test_seed_stream_with_event_handler_prints_incrementally(
    real_client: openai.OpenAI, tutor: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assistant_id, thread_id = tutor
    seen: list[str] = []

    class EventHandler(AssistantEventHandler):
        @override
        def on_text_created(self, text) -> None:  # noqa: ANN001
            print("\nassistant > ", end="", flush=True)

        @override
        def on_text_delta(self, delta, snapshot):  # noqa: ANN001, ANN201
            seen.append(delta.value)
            print(delta.value, end="", flush=True)

    with real_client.beta.threads.runs.stream(
        thread_id=thread_id,
        assistant_id=assistant_id,
        instructions="Please address the user as Jane Doe. The user has a premium account.",
        event_handler=EventHandler(),
        max_completion_tokens=30,
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    out = capsys.readouterr().out
    assert out.startswith("\nassistant > ")
    assert len(seen) > 5  # token by token, not one buffered chunk
    stored = real_client.beta.threads.messages.list(thread_id=thread_id, run_id=final.id).data[0]
    assert "".join(seen) == stored.content[0].text.value  # type: ignore[union-attr]
    assert out == "\nassistant > " + stored.content[0].text.value  # type: ignore[union-attr]


def test_stream_event_order_and_text_equal_stored(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    events = list(real_client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True, max_completion_tokens=60,
    ))
    names = [e.event for e in events]
    head = ["thread.run.created", "thread.run.queued", "thread.run.in_progress", "thread.run.step.created",
            "thread.run.step.in_progress", "thread.message.created", "thread.message.in_progress"]
    assert names[: len(head)] == head
    final_status = events[-1].data.status  # type: ignore[union-attr]
    ending = {"completed": ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"],
              "incomplete": ["thread.message.incomplete", "thread.run.step.completed", "thread.run.incomplete"]}
    assert names[-3:] == ending[final_status]
    assert set(names[len(head):-3]) == {"thread.message.delta"}
    text = "".join(e.data.delta.content[0].text.value for e in events if e.event == "thread.message.delta")  # type: ignore[union-attr]
    final = events[-1].data
    assert final.usage is not None and final.usage.completion_tokens >= 1  # type: ignore[union-attr]
    stored = real_client.beta.threads.messages.retrieve(thread_id=thread_id, message_id=events[5].data.id)  # type: ignore[union-attr]
    assert stored.content[0].text.value == text  # type: ignore[union-attr]


def test_create_thread_and_run_stream(real_client: openai.OpenAI) -> None:
    assistant = real_client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.", temperature=0)
    with real_client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Say hi."}]},
        max_completion_tokens=20,
    ) as stream:
        text = "".join(stream.text_deltas)
        run = stream.get_final_run()
    assert run.status in ("completed", "incomplete") and text
    thread_messages = real_client.beta.threads.messages.list(thread_id=run.thread_id, order="asc").data
    assert [m.role for m in thread_messages] == ["user", "assistant"]


def test_cancel_mid_generation(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    stream = real_client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id, stream=True,
        instructions="Write a very long story about numbers.", temperature=1.0,
    )
    run_id = None
    deltas = 0
    last = None
    for event in stream:
        if event.event == "thread.run.created":
            run_id = event.data.id
        if event.event == "thread.message.delta":
            deltas += 1
            if deltas == 3:
                cancelling = real_client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run_id)  # type: ignore[arg-type]
                assert cancelling.status in ("cancelling", "cancelled")
        last = event.event
    assert last == "thread.run.cancelled"
    run = real_client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)  # type: ignore[arg-type]
    assert run.status == "cancelled" and run.cancelled_at is not None
    message = real_client.beta.threads.messages.list(thread_id=thread_id, run_id=run_id).data[0]  # type: ignore[arg-type]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"  # type: ignore[union-attr]
    assert message.content[0].text.value  # type: ignore[union-attr]


def test_active_run_rules_give_the_real_400s(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    run = real_client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id,
                                          instructions="Write a long essay.", temperature=1.0)
    with pytest.raises(openai.BadRequestError) as second:
        real_client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    assert second.value.status_code == 400
    assert second.value.body["message"] == f"Thread {thread_id} already has an active run {run.id}."  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as add:
        real_client.beta.threads.messages.create(thread_id=thread_id, role="user", content="more")
    assert add.value.body["message"] == f"Can't add messages to {thread_id} while a run {run.id} is active."  # type: ignore[index]
    real_client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run.id)
    done = real_client.beta.threads.runs.poll(thread_id=thread_id, run_id=run.id)
    assert done.status == "cancelled"


def test_max_completion_tokens_makes_run_incomplete(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    run = real_client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, max_completion_tokens=5,
        instructions="Explain algebra in detail.",
    )
    assert run.status == "incomplete"
    assert run.incomplete_details is not None and run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens == 5


def test_poll_after_header_and_modify_run(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    raw = real_client.beta.threads.runs.with_raw_response.create(
        thread_id=thread_id, assistant_id=assistant_id, max_completion_tokens=5, metadata={"k": "v"},
    )
    assert raw.headers.get("openai-poll-after-ms")
    run = raw.parse()
    assert run.metadata == {"k": "v"}
    run = real_client.beta.threads.runs.poll(thread_id=thread_id, run_id=run.id)
    updated = real_client.beta.threads.runs.update(thread_id=thread_id, run_id=run.id, metadata={"k": "w"})
    assert updated.metadata == {"k": "w"}
    listed = real_client.beta.threads.runs.list(thread_id=thread_id)
    assert [r.id for r in listed.data] == [run.id]


def test_client_disconnect_does_not_stop_the_run(real_client: openai.OpenAI, tutor: tuple[str, str]) -> None:
    assistant_id, thread_id = tutor
    body = json.dumps({"assistant_id": assistant_id, "stream": True, "max_completion_tokens": 30}).encode()
    request = urllib.request.Request(f"{real_client.base_url}threads/{thread_id}/runs", data=body,
                                     headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    with urllib.request.urlopen(request) as response:
        first = response.readline()
        assert first.startswith(b"event: thread.run.created")
        run_id = json.loads(response.readline()[len(b"data: "):])["id"]
    # Disconnected after the first event; the run must still complete and be stored.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = real_client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)
        if run.status not in ("queued", "in_progress"):
            break
        time.sleep(0.1)
    assert run.status in ("completed", "incomplete")
    assert real_client.beta.threads.messages.list(thread_id=thread_id, run_id=run_id).data[0].content


def test_in_process_client_runs(real_inproc_client: openai.OpenAI) -> None:
    assistant = real_inproc_client.beta.assistants.create(model="gpt-4o", temperature=0)
    thread = real_inproc_client.beta.threads.create(messages=[{"role": "user", "content": "Hello!"}])
    run = real_inproc_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                          max_completion_tokens=10)
    assert run.status in ("completed", "incomplete")
    with real_inproc_client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                                max_completion_tokens=10) as stream:
        text = "".join(stream.text_deltas)
    assert text


def test_response_format_json_schema_is_enforced(real_client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    assistant = real_client.beta.assistants.create(
        model="gpt-4o", temperature=0, instructions="Reply in JSON.",
        response_format={"type": "json_schema", "json_schema": {"name": "result", "schema": schema}},
    )
    thread = real_client.beta.threads.create(messages=[{"role": "user", "content": "What is 2 + 3?"}])
    run = real_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   max_completion_tokens=40)
    text = real_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0].content[0].text.value  # type: ignore[union-attr]
    assert isinstance(json.loads(text)["answer"], int)
