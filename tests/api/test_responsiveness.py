"""The server answers while the model generates: generation runs on the worker, not on the request path."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend


def test_requests_are_answered_while_a_run_generates(
    make_engine: Callable[..., Engine], real_backend: ModelBackend, make_client: Callable[..., openai.OpenAI]
) -> None:
    engine = make_engine(real_backend)
    client = make_client(engine)
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Write a very long story.",
                                              temperature=1.0)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Tell me a long story."}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=400)
    deadline = time.monotonic() + 30
    while client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id).status == "queued":
        assert time.monotonic() < deadline
    slowest = 0.0
    during = 0
    for _ in range(10):
        during += client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id).status == "in_progress"
        start = time.monotonic()
        other = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        client.beta.assistants.list(limit=5)
        client.beta.threads.messages.list(thread_id=other.id)
        slowest = max(slowest, time.monotonic() - start)
    assert during >= 5  # the model was generating while these were answered
    assert slowest < 1.0  # three requests, a tokenization included, while two cores generate
    if client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id).status == "in_progress":
        client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
    assert client.beta.threads.runs.poll(thread_id=thread.id, run_id=run.id).status in ("cancelled", "completed",
                                                                                        "incomplete")
