"""Replies on the default model, with what a new user sends: no temperature, no top_p, no max_completion_tokens.
They end by themselves within the budget and are not degenerate; values a client sets are honoured and echoed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.engine.loops import LoopGuard

EVERYDAY = [
    "What is the capital of France?",
    "Give me three tips for sleeping better.",
    "Write a haiku about the sea.",
    "What is 15 times 4?",
    "List five fruits.",
]


@pytest.fixture
def default_client(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI],
                   recording: Any) -> openai.OpenAI:
    # Settings() as `serve` has them: the default reply budget, the model's own sampling defaults.
    return make_client(make_engine(recording))


def degenerate(backend: Any, text: str) -> str | None:
    guard = LoopGuard()
    tokenizer = backend.tokenizer
    for token in backend.encode_text(text):
        if guard.feed(token, tokenizer.piece(token)):
            return guard.tripped
    letters = [c for c in text if c.isalpha()]
    if letters and sum(not c.isascii() for c in letters) / len(letters) > 0.1:
        return "non-English drift"
    return None


@pytest.mark.parametrize("question", EVERYDAY)
def test_everyday_prompts_end_by_themselves(default_client: openai.OpenAI, recording: Any, question: str) -> None:
    assistant = default_client.beta.assistants.create(model="gpt-4o", instructions="You are a helpful assistant.")
    thread = default_client.beta.threads.create(messages=[{"role": "user", "content": question}])
    run = default_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed" and run.usage is not None
    reply = default_client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.status == "completed"  # the model stopped: not cut off by the reply budget
    assert run.usage.completion_tokens < 400
    text = reply.content[0].text.value  # type: ignore[union-attr]
    assert text.strip() and degenerate(recording.inner, text) is None, text


def test_unset_sampling_uses_and_echoes_the_models_defaults(default_client: openai.OpenAI, recording: Any) -> None:
    assistant = default_client.beta.assistants.create(model="gpt-4o")
    assert (assistant.temperature, assistant.top_p) == (0.2, 0.9)  # SmolLM2's model card
    assert default_client.beta.assistants.retrieve(assistant.id).temperature == 0.2
    thread = default_client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = default_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert (run.temperature, run.top_p) == (0.2, 0.9)
    used = recording.samplings[-1]
    assert (used.temperature, used.top_p, used.repeat_penalty) == (0.2, 0.9, 1.1)


def test_a_client_set_temperature_is_honoured_and_echoed(default_client: openai.OpenAI, recording: Any) -> None:
    assistant = default_client.beta.assistants.create(model="gpt-4o", temperature=0.7, top_p=0.5)
    assert (assistant.temperature, assistant.top_p) == (0.7, 0.5)
    thread = default_client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = default_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                           temperature=1.3, max_completion_tokens=8)
    assert (run.temperature, run.top_p) == (1.3, 0.5)
    assert (recording.samplings[-1].temperature, recording.samplings[-1].top_p) == (1.3, 0.5)


def test_max_completion_tokens_still_ends_incomplete(default_client: openai.OpenAI) -> None:
    assistant = default_client.beta.assistants.create(model="gpt-4o")
    thread = default_client.beta.threads.create(messages=[{"role": "user", "content": "Write a long story."}])
    run = default_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                           max_completion_tokens=5)
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
    assert run.usage is not None and run.usage.completion_tokens == 5
