"""The support bot's own tests, on offline-assistants' pytest plugin: the scripted model says exactly what the
assistant does, the engine (runs, steps, events, the code interpreter's kernel) is real."""

from __future__ import annotations

import time

import pytest
from bot import BotError, ask, ask_streaming, make_assistant


def test_answers_from_the_order_lookup(assistants_client, assistants_script) -> None:  # noqa: ANN001
    assistants_script.call("lookup_order", order_id="A100").reply("Your order A100 has shipped.")
    answer, _ = ask(assistants_client, make_assistant(assistants_client), "Where is my order A100?")
    assert answer == "Your order A100 has shipped."
    assert '"status": "shipped"' in assistants_script.prompts[-1]  # the bot's lookup reached the model


def test_computes_with_the_code_interpreter(assistants_client, assistants_script) -> None:  # noqa: ANN001
    assistants_script.code("print(3 * 19.99)").reply("Three of them cost 59.97.")
    answer, thread = ask(assistants_client, make_assistant(assistants_client), "What do 3 at 19.99 cost?")
    assert answer == "Three of them cost 59.97."
    assert "59.97" in assistants_script.prompts[-1]  # the kernel really ran the code


def test_a_failed_run_is_reported(assistants_client, assistants_script) -> None:  # noqa: ANN001
    assistants_script.fail("rate_limit_exceeded", "Too many requests.")
    with pytest.raises(BotError, match="Too many requests"):
        ask(assistants_client, make_assistant(assistants_client), "Hello?")


def test_a_slow_answer_can_be_cancelled(assistants_client, assistants_script) -> None:  # noqa: ANN001
    assistants_script.reply(" ".join(f"word{i}" for i in range(400)), delay_s=0.01)
    assistant = make_assistant(assistants_client)
    thread = assistants_client.beta.threads.create(messages=[{"role": "user", "content": "Tell me everything."}])
    run = assistants_client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)
    while assistants_client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "queued":
        time.sleep(0.02)
    assistants_client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert assistants_client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "cancelled"


def test_streams_its_answer(assistants_client, assistants_script) -> None:  # noqa: ANN001
    assistants_script.reply("Hello! How can I help with your order today?")
    pieces = ask_streaming(assistants_client, make_assistant(assistants_client), "Hi")
    assert len(pieces) > 1 and "".join(pieces) == "Hello! How can I help with your order today?"
