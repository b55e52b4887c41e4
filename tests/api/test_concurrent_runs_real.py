"""Runs on different threads decode together on the real model (llm/batch.py, --parallel 4, the default),
through the official SDK over a loopback server: streams interleave, each stored message is its stream, a
cancel ends one run and leaves the others' text as it is alone, and at temperature 0 a run writes the same
whether it decoded alone or among four."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend

ASKS = ["Write a short poem about the sea.", "Write a short poem about a forest.",
        "Write a short poem about the moon.", "Write a short poem about rain."]
TOKENS = 32


@dataclass
class Stream:
    deltas: list[tuple[float, str]] = field(default_factory=list)
    ended_at: float = 0.0
    status: str = ""
    stored: str = ""
    usage: tuple[int, int] = (0, 0)  # the run's prompt and completion tokens


@pytest.fixture
def sdk(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI],
        real_backend: ModelBackend) -> tuple[openai.OpenAI, str]:
    client = make_client(make_engine(real_backend))
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    return client, assistant.id


def stream_one(client: openai.OpenAI, assistant_id: str, ask: str, out: Stream, *,
               cancel_after: int | None = None, start: threading.Barrier | None = None) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": ask}])
    if start is not None:
        start.wait()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id, temperature=0,
                                         max_completion_tokens=TOKENS) as events:
        for event in events:
            if event.event == "thread.message.delta":
                for part in event.data.delta.content or []:
                    if part.type == "text" and part.text and part.text.value:
                        out.deltas.append((time.monotonic(), part.text.value))
                if cancel_after is not None and len(out.deltas) == cancel_after:
                    client.beta.threads.runs.cancel(thread_id=thread.id, run_id=events.current_run.id)  # type: ignore[union-attr]
            elif event.event in ("thread.run.completed", "thread.run.cancelled", "thread.run.failed",
                                 "thread.run.incomplete", "thread.run.expired"):
                out.ended_at, out.status = time.monotonic(), event.data.status
                if event.data.usage is not None:
                    out.usage = (event.data.usage.prompt_tokens, event.data.usage.completion_tokens)
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc").data
    out.stored = "".join(p.text.value for m in messages if m.role == "assistant" for p in m.content
                         if p.type == "text")


def together(client: openai.OpenAI, assistant_id: str, cancel: int | None = None) -> list[Stream]:
    streams = [Stream() for _ in ASKS]
    start = threading.Barrier(len(ASKS))
    threads = [threading.Thread(target=stream_one, args=(client, assistant_id, ask, streams[i]),
                                kwargs={"start": start, "cancel_after": 3 if i == cancel else None})
               for i, ask in enumerate(ASKS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return streams


ENDED = ("completed", "incomplete")  # incomplete: cut at max_completion_tokens, as the real API says


def alone(client: openai.OpenAI, assistant_id: str) -> list[Stream]:
    runs = []
    for ask in ASKS:
        one = Stream()
        stream_one(client, assistant_id, ask, one)
        assert one.status in ENDED and one.stored and min(one.usage) > 0
        runs.append(one)
    return runs


def test_four_streamed_runs_interleave_and_each_writes_what_it_writes_alone(sdk: tuple[openai.OpenAI, str]) -> None:
    client, assistant_id = sdk
    expected = alone(client, assistant_id)
    streams = together(client, assistant_id)
    assert all(s.status in ENDED for s in streams)
    first_end = min(s.ended_at for s in streams)
    # Every run had streamed text before any of them completed: they decoded side by side, not in turn.
    assert all(s.deltas and s.deltas[0][0] < first_end for s in streams)
    for s in streams:
        assert s.stored == "".join(d for _, d in s.deltas)  # each stored message is its stream
    # temperature 0: the same text alone or among four
    assert [s.stored for s in streams] == [e.stored for e in expected]
    assert [s.usage for s in streams] == [e.usage for e in expected]  # and the same usage, counted per run


def test_cancelling_one_of_four_leaves_the_other_three_unchanged(sdk: tuple[openai.OpenAI, str]) -> None:
    client, assistant_id = sdk
    expected = alone(client, assistant_id)
    streams = together(client, assistant_id, cancel=1)
    assert streams[1].status == "cancelled" and len(streams[1].deltas) < TOKENS
    for i in (0, 2, 3):
        assert streams[i].status in ENDED and streams[i].stored == expected[i].stored
        assert streams[i].usage == expected[i].usage
