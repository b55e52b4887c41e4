"""Function calling with the real model through the SDK: requires_action, submit_tool_outputs (polling and
streaming), schema-valid arguments thanks to grammar-constrained decoding."""

from __future__ import annotations

import json
from collections.abc import Callable

import openai

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _client(make_engine: Callable[..., Engine], real_backend: ModelBackend,
            make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    return make_client(make_engine(real_backend, max_output_tokens=24))


def test_required_function_call_then_outputs(make_engine, real_backend, make_client) -> None:  # noqa: ANN001
    client = _client(make_engine, real_backend, make_client)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER], temperature=0,  # type: ignore[list-item]
                                              instructions="You answer questions about the weather.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice="required")
    assert run.status == "requires_action"
    assert run.required_action is not None and run.required_action.type == "submit_tool_outputs"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)  # the schema is enforced by the grammar
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "22C and sunny"}],
    )
    assert run.status == "completed" and run.usage is not None
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    fn = steps[0].step_details.tool_calls[0].function  # type: ignore[union-attr]
    assert fn.output == "22C and sunny" and fn.name == "get_weather"
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.role == "assistant" and reply.content[0].text.value  # type: ignore[union-attr]


def test_function_call_streams_and_submit_streams(make_engine, real_backend, make_client) -> None:  # noqa: ANN001
    client = _client(make_engine, real_backend, make_client)
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER], temperature=0)  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather in Rome?"}])
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
        calls = stream.get_final_run_steps()
    assert events[-1] == "thread.run.requires_action" and run.status == "requires_action"
    assert "thread.run.step.delta" in events
    streamed_args = calls[0].step_details.tool_calls[0].function.arguments  # type: ignore[union-attr]
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    assert streamed_args == call.function.arguments
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "18C, cloudy"}],
    ) as stream:
        text = "".join(stream.text_deltas)
        final = stream.get_final_run()
    assert final.status == "completed" and text
