"""A model a user brings, with a tool-call syntax of its own: Qwen2.5-Coder-0.5B-Instruct (Hermes template),
through the official SDK. The same path as the default model: the decision is scored (in its own call syntax),
the call written under a grammar in that syntax, the answer never a call."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.tools.code_interpreter import JupyterCodeRunner

TUTOR = "You are a personal math tutor. Write and run code to answer math questions."
TEMPERATURE = {"type": "function", "function": {
    "name": "get_current_temperature", "description": "Get the current temperature for a specific location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g., San Francisco, CA"},
        "unit": {"type": "string", "enum": ["Celsius", "Fahrenheit"]}}, "required": ["location", "unit"]}}}
CALL_AS_TEXT = re.compile(r'<tool_call>|<tool_response>|\{\s*"name"\s*:')


@pytest.fixture
def qwen_client(make_engine: Callable[..., Engine], qwen_backend: ModelBackend, tmp_path: Path,
                kernel_runner: Callable[..., JupyterCodeRunner], make_client: Callable[..., openai.OpenAI]
                ) -> openai.OpenAI:
    runner = kernel_runner(tmp_path / "sandbox", timeout_s=10, memory_mb=1024)
    return make_client(make_engine(qwen_backend, code_runner=runner, max_output_tokens=96))


def test_the_math_tutor_runs_code_and_answers_from_it(qwen_client: openai.OpenAI) -> None:
    tutor = qwen_client.beta.assistants.create(model="gpt-4o", instructions=TUTOR, temperature=0,
                                               tools=[{"type": "code_interpreter"}])
    thread = qwen_client.beta.threads.create(messages=[{
        "role": "user", "content": "I need to solve the equation `3x + 11 = 14`. Can you help me?"}])
    run = qwen_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=tutor.id)
    assert run.status == "completed", run.last_error
    steps = qwen_client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    calls = [c for s in steps if s.step_details.type == "tool_calls" for c in s.step_details.tool_calls]
    assert calls and calls[0].type == "code_interpreter"  # the code ran
    reply = qwen_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]
    text = reply.content[0].text.value  # type: ignore[union-attr]
    assert re.search(r"\bx\s*=\s*1(\.0)?\b|\[1\]|\b1\.0\b", text), text
    assert not CALL_AS_TEXT.search(text)


def test_a_function_call_round_trips_in_its_own_syntax(qwen_client: openai.OpenAI) -> None:
    bot = qwen_client.beta.assistants.create(model="gpt-4o", instructions="You are a weather bot.", temperature=0,
                                             tools=[TEMPERATURE])  # type: ignore[list-item]
    thread = qwen_client.beta.threads.create(messages=[{
        "role": "user", "content": "What's the temperature in Paris, France in Celsius?"}])
    run = qwen_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=bot.id)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    assert call.function.name == "get_current_temperature"
    arguments = json.loads(call.function.arguments)  # written under the grammar: always parses
    assert "Paris" in arguments["location"] and arguments["unit"] == "Celsius"
    run = qwen_client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "17"}])
    assert run.status == "completed"
    text = qwen_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0].content[0].text.value  # type: ignore[union-attr]
    assert "17" in text and not CALL_AS_TEXT.search(text)


def test_a_request_no_tool_fits_is_answered(qwen_client: openai.OpenAI) -> None:
    bot = qwen_client.beta.assistants.create(model="gpt-4o", instructions="You are a weather bot.", temperature=0,
                                             tools=[TEMPERATURE])  # type: ignore[list-item]
    thread = qwen_client.beta.threads.create(messages=[{"role": "user", "content": "Tell me a joke about cats."}])
    run = qwen_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=bot.id)
    assert run.status == "completed"
    steps = qwen_client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id).data
    assert [s.type for s in steps] == ["message_creation"]
    text = qwen_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0].content[0].text.value  # type: ignore[union-attr]
    assert text.strip() and not CALL_AS_TEXT.search(text)
