"""Truncation semantics with the real model and tokenizer, through the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.schemas.messages import MessageCreate


@pytest.fixture
def rec_engine(make_engine: Callable[..., Engine], recording: Any) -> Engine:
    return make_engine(recording, max_output_tokens=8)


def _fill(engine: Engine, thread_id: str, n: int, topic: str = "apples") -> None:
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        engine.threads.add_message(thread_id, MessageCreate(role=role, content=f"Message number {i} about {topic}."))


def _setup(client: openai.OpenAI, engine: Engine, n: int, topic: str = "apples") -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.", temperature=0)
    thread = client.beta.threads.create()
    _fill(engine, thread.id, n, topic)
    return assistant.id, thread.id


def test_last_messages_sends_exactly_n(rec_engine: Engine, recording: Any,
                                       make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(rec_engine)
    assistant_id, thread_id = _setup(client, rec_engine, 12)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id,
        truncation_strategy={"type": "last_messages", "last_messages": 3},
    )
    assert run.truncation_strategy is not None and run.truncation_strategy.last_messages == 3
    backend = recording.inner
    expected = backend.encode_system("Be brief.")
    for i in range(9, 12):
        role = "user" if i % 2 == 0 else "assistant"
        expected += backend.encode_message(role, f"Message number {i} about apples.")  # type: ignore[arg-type]
    expected += backend.generation_prefix()
    assert recording.prompts[0] == expected
    assert run.usage is not None and run.usage.prompt_tokens == len(expected)


def test_thread_far_larger_than_the_window_completes(rec_engine: Engine, recording: Any,
                                                     make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(rec_engine)
    assistant_id, thread_id = _setup(client, rec_engine, 600)  # ~8,000 tokens into a 2,048-token window
    total = rec_engine.store.database.query_one(
        "SELECT max(cum_tokens) AS t FROM messages WHERE thread_id = ?", (thread_id,))["t"]  # type: ignore[index]
    assert total > 3 * recording.inner.n_ctx
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed"
    assert len(recording.prompts[0]) <= recording.inner.n_ctx * 3 // 4
    # The newest message is always kept, and the history kept is the most recent one.
    newest = recording.inner.encode_message("assistant", "Message number 599 about apples.")
    tail = newest + recording.inner.generation_prefix()
    assert recording.prompts[0][-len(tail):] == tail


def test_cut_point_is_stable_across_turns_and_the_prefix_is_reused(
    rec_engine: Engine, recording: Any, make_client: Callable[..., openai.OpenAI]
) -> None:
    client = make_client(rec_engine)
    assistant_id, thread_id = _setup(client, rec_engine, 300)
    client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    cut = rec_engine.store.threads.row(thread_id)["cut_seq"]
    assert cut > 1
    first = recording.prompts[-1]
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="And pears?")
    client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert rec_engine.store.threads.row(thread_id)["cut_seq"] == cut
    second = recording.prompts[-1]
    prefix = len(first) - len(recording.inner.generation_prefix())
    assert second[:prefix] == first[:prefix]
    # The KV cache made the follow-up cheap: only the new tail was evaluated.
    assert recording.evaluated[-1] < len(second) // 5


def test_budgets_end_the_run_incomplete_with_real_usage(rec_engine: Engine,
                                                        make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(rec_engine)
    assistant_id, thread_id = _setup(client, rec_engine, 4)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                   max_prompt_tokens=5)
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_prompt_tokens"  # type: ignore[union-attr]
    assert run.usage is not None and run.usage.prompt_tokens == 0
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                   max_completion_tokens=3, instructions="Write a long poem.")
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
    assert run.usage is not None and run.usage.completion_tokens == 3 and run.usage.prompt_tokens > 0
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                   max_prompt_tokens=60)
    assert run.status == "completed" and run.usage is not None and run.usage.prompt_tokens <= 60


def test_switching_threads_restores_each_threads_model_state(
    rec_engine: Engine, recording: Any, make_client: Callable[..., openai.OpenAI]
) -> None:
    client = make_client(rec_engine)
    assistant_id, first = _setup(client, rec_engine, 30)
    _, second = _setup(client, rec_engine, 30, topic="boats")
    client.beta.threads.runs.create_and_poll(thread_id=first, assistant_id=assistant_id)
    client.beta.threads.runs.create_and_poll(thread_id=second, assistant_id=assistant_id)
    assert recording.evaluated[-1] > len(recording.prompts[-1]) // 2  # a new thread is evaluated cold
    client.beta.threads.messages.create(thread_id=first, role="user", content="One more thing.")
    client.beta.threads.runs.create_and_poll(thread_id=first, assistant_id=assistant_id)
    # Back on the first thread, its saved state was restored: only the new message was evaluated.
    assert recording.evaluated[-1] < 40 < len(recording.prompts[-1])
