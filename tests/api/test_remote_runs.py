"""Runs through the official SDK on an engine whose model is a remote server: llama-cpp-python's own OpenAI-
compatible server on the embedded model (tests/upstream_servers.py), driven by the remote backend. The same API,
exact token counts, tool calls that parse, streaming, cancel, and failures that name the upstream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from upstream_servers import gguf

from offline_assistants.engine import Engine
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.remote import RemoteBackend
from offline_assistants.llm.remote_loading import connect
from offline_assistants.llm.remote_probe import ServerInfo
from offline_assistants.llm.upstream import Upstream
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.testing import serve
from offline_assistants.tools.code_interpreter import JupyterCodeRunner

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def remote(llama_cpp_upstream: Any) -> Iterator[RemoteBackend]:
    backend = connect(llama_cpp_upstream.url, n_ctx=2048)
    yield backend
    backend.close()


@pytest.fixture
def remote_client(make_engine: Callable[..., Engine], remote: RemoteBackend,
                  make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    return make_client(make_engine(remote, max_output_tokens=24))


def _assistant(client: openai.OpenAI, **extra: Any) -> str:
    return client.beta.assistants.create(model="gpt-4o", instructions="Answer briefly.", temperature=0, **extra).id


def _thread(client: openai.OpenAI, text: str) -> str:
    return client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def _reply(client: openai.OpenAI, thread_id: str) -> str:
    message = client.beta.threads.messages.list(thread_id=thread_id, order="desc").data[0]
    assert message.role == "assistant"
    return message.content[0].text.value  # type: ignore[union-attr]


def test_a_run_completes_and_streams_the_same_text(remote_client: openai.OpenAI) -> None:
    assistant_id = _assistant(remote_client)
    thread_id = _thread(remote_client, "Say hello.")
    run = remote_client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status in ("completed", "incomplete"), run.last_error
    assert _reply(remote_client, thread_id).strip()
    assert run.usage is not None and run.usage.completion_tokens >= 1
    remote_client.beta.threads.messages.create(thread_id=thread_id, role="user", content="Again, please.")
    with remote_client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        text = "".join(stream.text_deltas)
        final = stream.get_final_run()
    assert final.status in ("completed", "incomplete") and text.strip()
    assert _reply(remote_client, thread_id) == text


def test_a_code_interpreter_round(make_engine: Callable[..., Engine], remote: RemoteBackend, tmp_path: Path,
                                  make_client: Callable[..., openai.OpenAI],
                                  kernel_runner: Callable[..., JupyterCodeRunner]) -> None:
    runner = kernel_runner(tmp_path / "sandbox", timeout_s=10, memory_mb=1024)
    client = make_client(make_engine(remote, code_runner=runner, max_output_tokens=24))
    assistant_id = _assistant(client, tools=[{"type": "code_interpreter"}])
    thread_id = _thread(client, "Run this code:\n```python\nprint(6 * 7)\n```")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                   tool_choice={"type": "code_interpreter"})
    assert run.status in ("completed", "incomplete"), run.last_error
    steps = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id, order="asc").data
    call = next(s for s in steps if s.type == "tool_calls").step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter" and call.code_interpreter.input.strip()  # type: ignore[union-attr]
    compile(call.code_interpreter.input, "<model>", "exec")  # type: ignore[union-attr]  # the grammar's promise
    assert call.code_interpreter.outputs  # type: ignore[union-attr]  # it ran in the kernel


def test_a_function_call_then_submit_tool_outputs(remote_client: openai.OpenAI) -> None:
    assistant_id = _assistant(remote_client, tools=[WEATHER])
    thread_id = _thread(remote_client, "What is the weather in Paris?")
    run = remote_client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                          tool_choice="required")
    assert run.status == "requires_action", run.last_error
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)  # parses: written under the function's schema
    assert isinstance(arguments["city"], str)
    run = remote_client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread_id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "22C and sunny"}])
    assert run.status in ("completed", "incomplete"), run.last_error
    assert _reply(remote_client, thread_id).strip()


def test_response_format_json_schema_parses(remote_client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    assistant_id = _assistant(remote_client)
    thread_id = _thread(remote_client, "Give the largest city of France and its population.")
    run = remote_client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, max_completion_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    assert run.status == "completed", (run.status, run.last_error, run.incomplete_details)
    value = json.loads(_reply(remote_client, thread_id))
    assert isinstance(value["city"], str) and isinstance(value["population"], int)


def _fill(engine: Engine, thread_id: str, n: int) -> None:
    for i in range(n):
        engine.threads.add_message(thread_id, MessageCreate(role="user" if i % 2 == 0 else "assistant",
                                                            content=f"Message number {i} about apples."))


def test_truncation_counts_equal_the_local_backends(make_engine: Callable[..., Engine], remote: RemoteBackend,
                                                     real_backend: Any,
                                                     make_client: Callable[..., openai.OpenAI]) -> None:
    counted: dict[str, list[int]] = {}
    for name, backend in (("remote", remote), ("local", real_backend)):
        engine = make_engine(backend, max_output_tokens=4)
        client = make_client(engine)
        assistant_id = _assistant(client)
        counts = []
        for strategy, cap in (({"type": "last_messages", "last_messages": 3}, None), ({"type": "auto"}, 80)):
            thread_id = client.beta.threads.create().id
            _fill(engine, thread_id, 12)
            run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                           truncation_strategy=strategy,  # type: ignore[arg-type]
                                                           max_prompt_tokens=cap)
            assert run.status in ("completed", "incomplete") and run.usage is not None, run.last_error
            counts.append(run.usage.prompt_tokens)
        counted[name] = counts
    assert counted["remote"] == counted["local"], counted
    assert counted["remote"][1] <= 80


def test_cancel_mid_stream(remote_client: openai.OpenAI) -> None:
    assistant_id = _assistant(remote_client)
    thread_id = _thread(remote_client, "Count from 1 to 100, one number per line.")
    stream = remote_client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True,
                                                    max_completion_tokens=400)
    run_id, deltas, last = None, 0, None
    for event in stream:
        if event.event == "thread.run.created":
            run_id = event.data.id
        if event.event == "thread.message.delta":
            deltas += 1
            if deltas == 2:
                remote_client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run_id)  # type: ignore[arg-type]
        last = event.event
    assert last == "thread.run.cancelled"
    message = remote_client.beta.threads.messages.list(thread_id=thread_id, run_id=run_id).data[0]  # type: ignore[arg-type]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"  # type: ignore[union-attr]
    # The upstream request was closed: the server is free for the next run at once.
    run = remote_client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                          max_completion_tokens=2)
    assert run.status in ("completed", "incomplete")


def test_two_runs_at_once_on_two_threads(make_engine: Callable[..., Engine], llama_cpp_upstream: Any,
                                        make_client: Callable[..., openai.OpenAI]) -> None:
    backend = connect(llama_cpp_upstream.url, n_ctx=2048)
    assert not backend.parallel  # llama-cpp-python's server runs one request at a time: one worker by default
    backend.parallel = True  # here two anyway: two streams from two workers at once, queued by the server
    try:
        engine = make_engine(backend, max_output_tokens=8, max_concurrent_runs=2)
        assert engine.worker.concurrency == 2
        client = make_client(engine)
        assistant_id = _assistant(client)
        threads = [_thread(client, f"Name a {thing}.") for thing in ("fruit", "color")]
        runs = [client.beta.threads.runs.create(thread_id=t, assistant_id=assistant_id) for t in threads]
        for thread_id, run in zip(threads, runs):
            done = client.beta.threads.runs.poll(thread_id=thread_id, run_id=run.id)
            assert done.status in ("completed", "incomplete"), done.last_error
            assert _reply(client, thread_id).strip()
    finally:
        backend.close()


def test_the_upstream_killed_mid_run_fails_the_run_and_the_api_answers(
        make_engine: Callable[..., Engine], start_upstream: Callable[..., Any],
        make_client: Callable[..., openai.OpenAI]) -> None:
    upstream = start_upstream()
    backend = connect(upstream.url, n_ctx=2048)  # the server's own tokenizer: storing a message needs it too
    root = upstream.url[: -len("/v1")]
    try:
        client = make_client(make_engine(backend, max_output_tokens=400))
        assistant_id = _assistant(client)
        thread_id = _thread(client, "Count from 1 to 100, one number per line.")
        stream = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, stream=True)
        run_id, last = None, None
        for event in stream:
            if event.event == "thread.run.created":
                run_id = event.data.id
            if event.event == "thread.message.delta" and upstream.process.poll() is None:
                upstream.kill()
            last = event
        assert last is not None and last.event == "thread.run.failed"
        run = client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)  # type: ignore[arg-type]
        assert run.status == "failed" and run.last_error is not None and run.last_error.code == "server_error"
        assert f"the model server at {root}/" in run.last_error.message, run.last_error.message
        # Every endpoint still answers: a message that cannot be counted is refused with a 503 that says why
        # (and is not stored), the rest as always; the next run fails at once, saying the server is unreachable.
        with pytest.raises(openai.InternalServerError) as refused:
            client.beta.threads.messages.create(thread_id=thread_id, role="user", content="Still there?")
        assert refused.value.status_code == 503 and "could not be counted" in refused.value.message
        assert f"the model server at {root}/" in refused.value.message and "unreachable" in refused.value.message
        assert [m.role for m in client.beta.threads.messages.list(thread_id=thread_id, order="asc").data] == [
            "user", "assistant"]
        started = time.monotonic()
        again = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                          poll_interval_ms=100)
        assert again.status == "failed" and "unreachable" in again.last_error.message  # type: ignore[union-attr]
        assert time.monotonic() - started < 15
    finally:
        backend.close()


def test_an_upstream_429_ends_the_run_rate_limit_exceeded(make_engine: Callable[..., Engine],
                                                          make_client: Callable[..., openai.OpenAI]) -> None:
    async def completions(_request: Request) -> Response:
        return JSONResponse({"error": {"message": "queue full, retry later"}}, 429)

    app = Starlette(routes=[Route("/v1/completions", completions, methods=["POST"])])
    with serve(app) as url:
        info = ServerInfo(kind="vllm", model="m", n_ctx=2048, token_prompts=True, constraints="vllm-structured",
                          scoring="echo")
        backend = RemoteBackend(Upstream(url), info, LlamaTokenizer(gguf()), n_ctx=2048)
        client = make_client(make_engine(backend))
        thread_id = _thread(client, "Hi")
        run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=_assistant(client))
        backend.close()
    assert run.status == "failed" and run.last_error is not None
    assert run.last_error.code == "rate_limit_exceeded"
    assert "HTTP 429" in run.last_error.message and "queue full, retry later" in run.last_error.message

