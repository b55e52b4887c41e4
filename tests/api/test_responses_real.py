"""The Responses face on the real model, through the official SDK: an answer, the function loop, a stream, and
code run in the kernel. The same engine path as runs (tests/api/test_functions_real.py and friends)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.tools.code_interpreter import JupyterCodeRunner

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def responses_client(make_engine: Callable[..., Engine], real_backend: ModelBackend,
                     make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    return make_client(make_engine(real_backend, max_output_tokens=48))


def test_a_plain_request_is_answered(responses_client: openai.OpenAI) -> None:
    r = responses_client.responses.create(model="gpt-4o", input="What is the capital of France?", temperature=0)
    assert r.status == "completed" and r.output_text.strip()
    assert "<tool_call>" not in r.output_text and "<|im_" not in r.output_text


def test_the_function_loop_on_the_real_model(responses_client: openai.OpenAI) -> None:
    r = responses_client.responses.create(model="gpt-4o", input="What is the weather in Paris?",
                                          tools=[WEATHER], tool_choice="required")  # type: ignore[list-item]
    [call] = [o for o in r.output if o.type == "function_call"]
    assert call.name == "get_weather" and "paris" in json.loads(call.arguments)["city"].lower()
    done = responses_client.responses.create(
        model="gpt-4o", previous_response_id=r.id, tools=[WEATHER], temperature=0,  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 24 C"}])
    assert done.status == "completed" and "24" in done.output_text


def test_a_stream_on_the_real_model(responses_client: openai.OpenAI) -> None:
    with responses_client.responses.stream(model="gpt-4o", input="Say hello.", temperature=0) as stream:
        events = list(stream)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    # Cut by the server's cap (48 tokens here) a stream ends `response.incomplete`, as the real API ends it.
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert deltas and events[-1].response.output_text == deltas


def test_code_runs_in_the_kernel(make_engine: Callable[..., Engine], real_backend: ModelBackend, tmp_path: Path,
                                 kernel_runner: Callable[..., JupyterCodeRunner],
                                 make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(make_engine(real_backend, code_runner=kernel_runner(tmp_path / "sandbox"),
                                     max_output_tokens=64))
    r = client.responses.create(model="gpt-4o", input="Compute 1234 * 5678 in Python and print it.",
                                instructions="Write and run code to answer math questions.",
                                tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
                                tool_choice="required", include=["code_interpreter_call.outputs"], temperature=0)
    [code] = [o for o in r.output if o.type == "code_interpreter_call"]
    assert code.code and code.outputs and "7006652" in code.outputs[0].logs  # type: ignore[union-attr]
    assert r.output[-1].type == "message"
