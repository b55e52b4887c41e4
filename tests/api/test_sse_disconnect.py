"""Streaming clients that go away mid-run leave no subscription behind, and the run goes on to the end."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

import httpx2
import openai

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend


def test_clients_that_disconnect_at_random_leave_nothing_behind(make_engine: Callable[..., Engine],
                                                                make_client: Callable[..., openai.OpenAI]) -> None:
    replies = [" ".join(f"w{j}-{i}" for i in range(60)) for j in range(8)]
    engine = make_engine(CannedBackend(replies, delay_s=0.005))
    client = make_client(engine)
    base = str(client.base_url).rstrip("/")
    assistant = client.beta.assistants.create(model="gpt-4o")
    rng = random.Random(7)
    threads = []
    for _ in range(8):
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "talk"}])
        threads.append(thread.id)
        with httpx2.stream("POST", f"{base}/threads/{thread.id}/runs", headers={"Authorization": "Bearer x"},
                           json={"assistant_id": assistant.id, "stream": True}, timeout=30) as response:
            assert response.status_code == 200
            wanted = rng.randint(1, 40)  # leave after a random number of lines, mid-stream
            for n, _line in enumerate(response.iter_lines()):
                if n >= wanted:
                    break
    assert engine.wait_idle(30)
    deadline = time.monotonic() + 5
    while engine.bus.listening() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.bus.listening() == 0
    for thread_id in threads:  # every run still ran to its end and was stored
        [run] = client.beta.threads.runs.list(thread_id=thread_id).data
        assert run.status == "completed", json.dumps(run.model_dump())[:200]
