"""The model can never take the server down: a model process killed mid-stream, and one that aborts at load,
through the real server and the official SDK."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.messages import ChildSpec
from offline_assistants.llm.process import ProcessBackend
from offline_assistants.testing import load_default_backend

# Both tests run the real model (the first in a process of its own, the second for its tokenizer).
pytestmark = pytest.mark.model

CRASH = "the model process crashed (SIGSEGV); it was restarted"


@pytest.fixture
def own_backend(tmp_path: Path) -> Iterator[ProcessBackend]:
    """A model process of this test's own: killing it must not disturb the session's shared one."""
    backend = load_default_backend(n_ctx=1024, cache_dir=tmp_path / "cache")
    yield backend
    backend.close()


def stream_events(client: openai.OpenAI, thread_id: str, assistant_id: str,
                  on_event: Callable[[str], None] = lambda e: None) -> list[str]:
    """The SSE event names of a streamed run, read off the wire through the SDK's raw response."""
    names: list[str] = []
    with client.beta.threads.runs.with_streaming_response.create(
            thread_id=thread_id, assistant_id=assistant_id, stream=True, max_completion_tokens=300) as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                names.append(line[len("event: "):])
                on_event(names[-1])
    return names


def test_a_segfault_mid_stream_fails_that_run_and_nothing_else(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI],
        own_backend: ProcessBackend) -> None:
    client = make_client(make_engine(own_backend))
    assistant = client.beta.assistants.create(model="gpt-4o", temperature=0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}])
    before = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                      max_completion_tokens=8)
    assert before.status in ("completed", "incomplete")
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="Count from 1 to 200.")
    first_pid = own_backend.pid
    assert first_pid is not None
    answered: list[float] = []

    def kill_on_first_delta(name: str) -> None:
        if name == "thread.message.delta" and not answered:
            os.kill(first_pid, signal.SIGSEGV)
            started = time.monotonic()  # the server answers while its model process is dead or reloading
            client.models.list()
            client.beta.threads.messages.list(thread_id=thread.id)
            answered.append(time.monotonic() - started)

    events = stream_events(client, thread.id, assistant.id, kill_on_first_delta)
    assert answered and answered[0] < 5
    assert events[-2:] == ["thread.run.failed", "done"]
    assert "thread.message.incomplete" in events and "thread.run.step.failed" in events

    runs = client.beta.threads.runs.list(thread_id=thread.id).data
    crashed = runs[0]
    assert crashed.status == "failed" and crashed.failed_at is not None
    assert crashed.last_error is not None and crashed.last_error.code == "server_error"
    assert crashed.last_error.message == CRASH
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=crashed.id).data
    assert [s.status for s in steps] == ["failed"] and steps[0].last_error.message == CRASH  # type: ignore[union-attr]
    partial = client.beta.threads.messages.list(thread_id=thread.id, run_id=crashed.id).data[0]
    assert partial.status == "incomplete" and partial.incomplete_details.reason == "run_failed"  # type: ignore[union-attr]

    # Nothing written before the crash is lost: the first run, its message and the user's messages.
    kept = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=before.id)
    assert kept.status == before.status and kept.usage == before.usage
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id=thread.id, order="asc")]  # type: ignore[union-attr]
    assert texts[0] == "Say hello." and texts[2] == "Count from 1 to 200." and texts[1].strip()

    # The model process was restarted and the thread goes on.
    after = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                     max_completion_tokens=8)
    assert after.status in ("completed", "incomplete") and after.last_error is None
    assert own_backend.pid not in (None, first_pid)


def test_a_model_that_aborts_at_load_fails_runs_with_the_reason(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI], real_backend) -> None:  # noqa: ANN001
    tokenizer = real_backend.tokenizer
    assert isinstance(tokenizer, LlamaTokenizer)
    backend = ProcessBackend(tokenizer, ChildSpec({}, loader="faulty_models:abort_at_load"), wait=False,
                             retry_after_s=600)
    try:
        client = make_client(make_engine(backend))
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                       poll_interval_ms=50)
        assert run.status == "failed" and run.last_error is not None and run.last_error.code == "server_error"
        assert "the model process crashed while loading the model (SIGABRT), 3 times in a row" in run.last_error.message
        # The server still answers, and the next run fails fast with the same reason instead of looping.
        assert client.beta.threads.retrieve(thread.id).id == thread.id
        started = time.monotonic()
        again = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                         poll_interval_ms=50)
        assert again.status == "failed" and "SIGABRT" in again.last_error.message  # type: ignore[union-attr]
        assert time.monotonic() - started < 5 and backend.pid is None
    finally:
        backend.close()


def test_a_crash_while_runs_decode_together_fails_those_runs_and_nothing_else(
        make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI],
        own_backend: ProcessBackend) -> None:
    # Two runs on two threads decode in one batch (--parallel, llm/batch.py) when the model process dies: both
    # fail with the reason; a run queued behind them (--parallel 2 here) starts on the new process and completes.
    import threading

    client = make_client(make_engine(own_backend, max_concurrent_runs=2))
    assistant = client.beta.assistants.create(model="gpt-4o", temperature=0)
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": "Count from 1 to 200."}]).id
               for _ in range(2)]
    waiting = client.beta.threads.create(messages=[{"role": "user", "content": "Say hello."}]).id
    first_pid = own_backend.pid
    assert first_pid is not None
    streaming = threading.Barrier(3)

    def stream(thread_id: str) -> None:
        deltas = 0

        def on_event(name: str) -> None:
            nonlocal deltas
            deltas += name == "thread.message.delta"
            if deltas == 1 and name == "thread.message.delta":
                streaming.wait(30)

        stream_events(client, thread_id, assistant.id, on_event)

    workers = [threading.Thread(target=stream, args=(t,)) for t in threads]
    for w in workers:
        w.start()
    streaming.wait(60)  # both runs have streamed a delta: both are in the batch
    queued = client.beta.threads.runs.create(thread_id=waiting, assistant_id=assistant.id, max_completion_tokens=8)
    os.kill(first_pid, signal.SIGSEGV)
    for w in workers:
        w.join(60)
    for thread_id in threads:
        run = client.beta.threads.runs.list(thread_id=thread_id).data[0]
        assert run.status == "failed" and run.last_error is not None and run.last_error.message == CRASH
    done = client.beta.threads.runs.poll(thread_id=waiting, run_id=queued.id, poll_interval_ms=50)
    assert done.status in ("completed", "incomplete") and done.last_error is None
    assert own_backend.pid not in (None, first_pid)
