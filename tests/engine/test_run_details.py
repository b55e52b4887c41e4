"""A run's `x_details` extension: time to first token, the generation rate, KV-cache reuse and the prompt window,
measured by the engine, stored with the run, and read back through the official SDK with strict validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai

from offline_assistants.engine import Engine
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.script import Script


def details(run: Any) -> dict[str, Any]:
    """The extension as the SDK keeps it: an unknown field, in the model's extras."""
    extra = run.model_extra or {}
    assert "x_details" in extra, "the SDK dropped x_details"
    value: dict[str, Any] = extra["x_details"]
    return value


def _assistant_and_thread(client: openai.OpenAI, *messages: str) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": m} for m in messages])
    return assistant.id, thread.id


def test_a_streamed_reply_reports_its_first_token_rate_and_window(
        assistants_engine: Engine, assistants_script: Script, make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(assistants_engine)  # strict response validation: the SDK must accept the extension
    assistants_script.reply("one two three four five six", delay_s=0.02)
    assistant_id, thread_id = _assistant_and_thread(client, "Count to six.")
    queued = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    assert details(queued)["model_calls"] == 0 and details(queued)["time_to_first_token_ms"] is None
    run = client.beta.threads.runs.poll(queued.id, thread_id=thread_id)
    assert run.status == "completed"
    d = details(run)
    assert d["model_calls"] == 1
    assert d["time_to_first_token_ms"] is not None and d["time_to_first_token_ms"] >= 0
    # Six words, 20 ms apart after the first: five intervals of at least 20 ms, so at most 50 tokens/s.
    assert d["generated_tokens"] >= 5 and d["generation_ms"] >= 5 * 20 * 0.9
    assert 0 < d["tokens_per_second"] <= 60
    # The scripted model reuses no KV cache: the whole prompt was evaluated.
    assert d["cached_prompt_tokens"] == 0
    assert run.usage is not None and d["prompt_tokens"] == run.usage.prompt_tokens
    user = client.beta.threads.messages.list(thread_id, order="asc").data[0]
    assert d["window"] == {"first_message_id": user.id, "last_message_id": user.id, "messages": 1,
                           "tool_exchanges": 0, "tool_exchanges_cut": 0, "prompt_tokens": run.usage.prompt_tokens}
    # The same object on every read: listed and retrieved.
    assert details(client.beta.threads.runs.list(thread_id).data[0]) == d


def test_the_window_names_the_messages_truncation_kept(
        assistants_engine: Engine, assistants_script: Script, make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(assistants_engine)
    assistants_script.reply("ok")
    assistant_id, thread_id = _assistant_and_thread(client, *[f"message {i}" for i in range(6)])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id,
        truncation_strategy={"type": "last_messages", "last_messages": 2})
    ids = [m.id for m in client.beta.threads.messages.list(thread_id, order="asc").data]
    window = details(run)["window"]
    assert (window["first_message_id"], window["last_message_id"], window["messages"]) == (ids[4], ids[5], 2)


def test_a_resumed_run_adds_to_its_figures_and_counts_its_tool_exchanges(
        assistants_engine: Engine, assistants_script: Script, make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(assistants_engine)
    assistants_script.call("lookup", key="a").reply("done")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "function", "function": {
        "name": "lookup", "parameters": {"type": "object", "properties": {"key": {"type": "string"}}}}}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "look a up"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.required_action is not None
    before = details(run)
    assert before["model_calls"] >= 1 and before["time_to_first_token_ms"] is not None
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "A"}])
    after = details(run)
    assert run.status == "completed"
    assert after["model_calls"] > before["model_calls"]
    assert after["time_to_first_token_ms"] == before["time_to_first_token_ms"]  # the run's first, kept
    assert after["prompt_tokens"] > before["prompt_tokens"]
    assert after["window"]["tool_exchanges"] == 1  # the answer was written with the call and its output in view


def test_the_real_model_reuses_the_kv_cache_on_a_follow_up_turn(
        real_client: openai.OpenAI, real_engine: Engine) -> None:
    assistant = real_client.beta.assistants.create(model="gpt-4o", instructions="Be brief.", temperature=0)
    thread = real_client.beta.threads.create(messages=[{"role": "user", "content": "Say hi."}])
    first = real_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                         max_completion_tokens=8)
    real_engine.threads.add_message(thread.id, MessageCreate(role="user", content="Again."))
    second = real_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                          max_completion_tokens=8)
    one, two = details(first), details(second)
    assert one["time_to_first_token_ms"] > 0 and one["tokens_per_second"] > 0
    # The second prompt starts with the first one (instructions, the first turn): the model process held it.
    assert two["cached_prompt_tokens"] > 0
    assert two["cached_prompt_tokens"] < two["prompt_tokens"]
