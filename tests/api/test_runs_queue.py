"""The run queue is bounded: past it, creating a run gets the real 429 envelope and stores nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend


def test_a_full_queue_refuses_new_runs_with_429(make_engine: Callable[..., Engine],
                                               make_client: Callable[..., openai.OpenAI]) -> None:
    slow = " ".join(f"w{i}" for i in range(300))
    engine = make_engine(CannedBackend([slow, "a", "b", "c"], delay_s=0.01), max_queued_runs=2)
    client = make_client(engine)
    assistant = client.beta.assistants.create(model="gpt-4o")
    threads = [client.beta.threads.create(messages=[{"role": "user", "content": "hi"}]) for _ in range(4)]
    busy = client.beta.threads.runs.create(thread_id=threads[0].id, assistant_id=assistant.id)
    deadline = time.monotonic() + 10
    while client.beta.threads.runs.retrieve(busy.id, thread_id=threads[0].id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for thread in threads[1:3]:  # the two the queue holds
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.RateLimitError) as exc:
        client.beta.threads.runs.create(thread_id=threads[3].id, assistant_id=assistant.id)
    assert exc.value.status_code == 429
    assert exc.value.body["code"] == "rate_limit_exceeded" and exc.value.body["type"] == "requests"  # type: ignore[index]
    assert client.beta.threads.runs.list(thread_id=threads[3].id).data == []  # nothing stored
    before = engine.store.database.query_one("SELECT count(*) AS n FROM threads")["n"]  # type: ignore[index]
    with pytest.raises(openai.RateLimitError):
        client.beta.threads.create_and_run(assistant_id=assistant.id)
    assert engine.store.database.query_one("SELECT count(*) AS n FROM threads")["n"] == before  # type: ignore[index]
    client.beta.threads.runs.cancel(busy.id, thread_id=threads[0].id)
    assert engine.wait_idle(10)
    again = client.beta.threads.runs.create_and_poll(thread_id=threads[3].id, assistant_id=assistant.id)
    assert again.status == "completed"  # with room in the queue, the same request goes through
