"""The pytest plugin and the scripted model, as an app's own tests would use them (the plugin is loaded by its
pytest11 entry point): every step kind through the official SDK, polled and streamed, and the teardown check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import openai
import pytest

from offline_assistants.script import Script

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}

pytest_plugins = ["pytester"]


def faq_store(client: Any, text: bytes) -> Any:
    """A vector store holding one small file, faq.md, indexed."""
    import io

    store = client.vector_stores.create()
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("faq.md", io.BytesIO(text)))
    return store


def ask(client: Any, text: str, **assistant: Any) -> tuple[Any, Any]:
    a = client.beta.assistants.create(model="gpt-4o", **assistant)
    t = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return a, t


def test_a_call_then_an_answer(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.call("get_weather", city="Paris").reply("Sunny in Paris.")
    a, t = ask(assistants_client, "Weather in Paris?", tools=[WEATHER])
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    run = assistants_client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "22C and sunny"}])
    assert run.status == "completed"
    assert assistants_client.beta.threads.messages.list(t.id).data[0].content[0].text.value == "Sunny in Paris."  # type: ignore[union-attr]
    assert "22C and sunny" in assistants_script.prompts[-1]  # the tool output reached the model


def test_streamed_reply_and_json(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.reply("Hello there, friend.").json({"answer": 42})
    a, t = ask(assistants_client, "Hi")
    with assistants_client.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        deltas = [e for e in stream if e.event == "thread.message.delta"]
    assert len(deltas) > 1 and stream.get_final_messages()[0].content[0].text.value == "Hello there, friend."  # type: ignore[union-attr]
    assistants_client.beta.threads.messages.create(t.id, role="user", content="As JSON?")
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id,
                                                             response_format={"type": "json_object"})
    assert run.status == "completed"
    assert assistants_client.beta.threads.messages.list(t.id).data[0].content[0].text.value == '{"answer": 42}'  # type: ignore[union-attr]


@pytest.mark.kernel  # the plugin's own engine starts it for the scripted code: no fixture of ours shows it
def test_code_really_runs(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.code("print(6 * 7)").reply("It is 42.")
    a, t = ask(assistants_client, "6 times 7?", tools=[{"type": "code_interpreter"}])
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    steps = assistants_client.beta.threads.runs.steps.list(thread_id=t.id, run_id=run.id, order="asc").data
    call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.code_interpreter.input == "print(6 * 7)" and call.code_interpreter.outputs[0].logs == "42\n"  # type: ignore[union-attr]


def test_a_scripted_failure_and_running_out(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.fail("rate_limit_exceeded", "Slow down.")
    a, t = ask(assistants_client, "Hi")
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "failed" and run.last_error is not None
    assert (run.last_error.code, run.last_error.message) == ("rate_limit_exceeded", "Slow down.")
    again = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert again.status == "failed" and again.last_error is not None
    assert again.last_error.message == f"no scripted reply left for {t.id}"


def test_a_slow_reply_can_be_cancelled(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.reply(" ".join(f"w{i}" for i in range(300)), delay_s=0.01)
    a, t = ask(assistants_client, "Talk.")
    run = assistants_client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    import time

    deadline = time.monotonic() + 10
    while assistants_client.beta.threads.runs.retrieve(run.id, thread_id=t.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assistants_client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    done = assistants_client.beta.threads.runs.poll(run.id, thread_id=t.id)
    assert done.status == "cancelled"


@pytest.fixture
def run_app_tests(pytester: pytest.Pytester, pytestconfig: pytest.Config) -> Callable[..., pytest.RunResult]:
    """pytest on the files made with `pytester`, as an app's own suite runs: the plugin comes by its entry point,
    no conftest of ours. In this process (a new one costs seconds), with the plugins this run leaves out left out
    there too: what a run in process imports is forgotten after it, so those would be imported anew each time."""
    plugins = [arg for name in pytestconfig.option.plugins for arg in ("-p", name)]

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_inprocess(*plugins, *args)

    return run


def test_leftover_steps_fail_the_test_at_teardown(pytester: pytest.Pytester,
                                                  run_app_tests: Callable[..., pytest.RunResult]) -> None:
    pytester.makepyfile('''
        def test_forgets_a_step(assistants_client, assistants_script):
            assistants_script.reply("never asked for")
    ''')
    result = run_app_tests("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the script still holds steps the app never reached: reply 'never asked for'*"])


def test_a_live_server_for_apps_that_build_their_own_client(assistants_server: str, assistants_script: Script) -> None:
    assistants_script.reply("Hi from the server.")
    client = openai.OpenAI(base_url=assistants_server, api_key="sk-any", max_retries=0)
    a, t = ask(client, "Hello?")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed" and assistants_server.startswith("http://127.0.0.1:")


@pytest.mark.model
@pytest.mark.assistants_model("default")
def test_the_marker_runs_on_the_real_default_model(assistants_client: openai.OpenAI) -> None:
    a, t = ask(assistants_client, "What is the capital of France?")
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    assert "Paris" in assistants_client.beta.threads.messages.list(t.id).data[0].content[0].text.value  # type: ignore[union-attr]


def test_parallel_calls_and_calling_again(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}
    assistants_script.calls(("get_weather", {"city": "Oslo"}), ("get_time", {"city": "Oslo"}))
    assistants_script.call("get_weather", city="Rome").reply("Done.")
    a, t = ask(assistants_client, "Oslo?", tools=[WEATHER, clock])
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city": "Oslo"}'), ("get_time", '{"city": "Oslo"}')]
    run = assistants_client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": c.id, "output": "ok"} for c in calls])
    [again] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert again.function.arguments == '{"city": "Rome"}'  # the same function again: the script says so
    run = assistants_client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": again.id, "output": "ok"}])
    assert run.status == "completed"


def test_steps_scoped_to_a_thread_or_an_assistant(assistants_client: openai.OpenAI,
                                                  assistants_script: Script) -> None:
    a, t1 = ask(assistants_client, "one")
    b = assistants_client.beta.assistants.create(model="gpt-4o")
    t2 = assistants_client.beta.threads.create(messages=[{"role": "user", "content": "two"}])
    assistants_script.reply("for everyone")
    assistants_script.thread(t1.id).reply("for thread one")
    assistants_script.assistant(b.id).reply("for assistant b")
    for thread, assistant, expected in ((t2, b, "for assistant b"), (t1, a, "for thread one"),
                                        (t2, a, "for everyone")):
        run = assistants_client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        text = assistants_client.beta.threads.messages.list(thread.id).data[0].content[0].text.value  # type: ignore[union-attr]
        assert run.status == "completed" and text == expected


def test_the_control_api_drives_a_scripted_server_over_http(make_engine: Any, make_client: Any) -> None:
    import httpx2

    from offline_assistants.script import ScriptedModel

    script = Script()
    engine = make_engine(ScriptedModel(script))
    client = make_client(engine, server_api_key="sk-test", api_key="sk-test")
    base = str(client.base_url).removesuffix("/v1/")
    auth = {"Authorization": "Bearer sk-test"}
    assert httpx2.post(f"{base}/_script/steps", json={"steps": []}).status_code == 401  # behind the key
    added = httpx2.post(f"{base}/_script/steps", headers=auth, json={"steps": [
        {"kind": "call", "name": "get_weather", "arguments": {"city": "Paris"}}, {"kind": "reply", "text": "Sunny."}]})
    assert added.status_code == 200 and added.json()["remaining"] == 2
    bad = httpx2.post(f"{base}/_script/steps", headers=auth, json={"steps": [{"kind": "dance"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "steps[0]"
    a, t = ask(client, "Weather?", tools=[WEATHER])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "requires_action"
    shown = httpx2.get(f"{base}/_script", headers=auth).json()
    assert shown["steps"] == ["reply 'Sunny.'"] and any("Weather?" in p for p in shown["prompts"])
    assert httpx2.delete(f"{base}/_script", headers=auth).json()["remaining"] == 0


def test_a_search_step_runs_over_the_real_index(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    store = faq_store(assistants_client, b"Refunds are paid within 14 days of the return.")
    assistants_script.search("refunds").reply("Within 14 days.")
    a, t = ask(assistants_client, "How fast are refunds?", tools=[{"type": "file_search"}],
               tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    run = assistants_client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    step = assistants_client.beta.threads.runs.steps.list(thread_id=t.id, run_id=run.id, order="asc").data[0]
    assert step.step_details.tool_calls[0].file_search.results[0].file_name == "faq.md"  # type: ignore[union-attr]
    text = assistants_client.beta.threads.messages.list(t.id).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value.startswith("Within 14 days.") and text.annotations[0].type == "file_citation"


def test_a_streamed_call_and_the_streamed_answer(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.call("get_weather", city="Lima").reply("Warm in Lima.")
    a, t = ask(assistants_client, "Lima?", tools=[WEATHER])
    with assistants_client.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
    assert events[-1] == "thread.run.requires_action" and "thread.run.step.delta" in events
    [call] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    with assistants_client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "25C"}]) as stream:
        text = "".join(e.data.delta.content[0].text.value for e in stream  # type: ignore[union-attr]
                       if e.event == "thread.message.delta")
    assert text == "Warm in Lima."


def test_fixture_setup_is_fast(pytester: pytest.Pytester, run_app_tests: Callable[..., pytest.RunResult]) -> None:
    import re

    pytester.makepyfile('''
        def test_first(assistants_client, assistants_script):
            pass

        def test_second(assistants_client, assistants_script):
            pass
    ''')
    result = run_app_tests("-p", "no:cacheprovider", "--durations=0", "-vv")
    result.assert_outcomes(passed=2)
    timings = {m.group(2): float(m.group(1)) for line in result.outlines
               if (m := re.match(r"([0-9.]+)s setup\s+\S+::(test_\w+)", line))}
    # The first test also pays for importing the SDK and the engine; a test after it only for its fixtures.
    assert timings["test_second"] < 0.1, timings


# The code step's kernel is started by the plugin's own engine: no fixture of ours shows it.
@pytest.mark.parametrize("kind", [pytest.param("code", marks=pytest.mark.kernel), "json", "fail", "long"])
def test_every_other_step_kind_streamed(assistants_client: openai.OpenAI, assistants_script: Script, kind: str) -> None:
    tools: list[Any] = [{"type": "code_interpreter"}] if kind == "code" else []
    extra: dict[str, Any] = {}
    if kind == "code":
        assistants_script.code("print('hi')").reply("Printed.")
    elif kind == "json":
        assistants_script.json({"ok": True})
        extra["response_format"] = {"type": "json_object"}
    elif kind == "fail":
        assistants_script.fail("invalid_prompt", "Not like that.")
    else:
        assistants_script.reply(" ".join(f"w{i}" for i in range(50)))
        extra["max_completion_tokens"] = 5
    a, t = ask(assistants_client, "Go.", tools=tools)
    with assistants_client.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id, **extra) as stream:
        events = [e.event for e in stream]
    final = {"code": "thread.run.completed", "json": "thread.run.completed", "fail": "thread.run.failed",
             "long": "thread.run.incomplete"}[kind]
    assert events[-1] == final, events
    run = assistants_client.beta.threads.runs.list(thread_id=t.id).data[0]
    if kind == "code":
        assert "thread.run.step.delta" in events and run.status == "completed"
    if kind == "fail":
        assert run.last_error is not None and run.last_error.code == "invalid_prompt"
    if kind == "long":
        assert run.incomplete_details is not None and run.incomplete_details.reason == "max_completion_tokens"


def test_a_search_step_streamed(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    store = faq_store(assistants_client, b"Shipping to Norway takes five days.")
    assistants_script.search("shipping Norway").reply("Five days.")
    a, t = ask(assistants_client, "Shipping to Norway?", tools=[{"type": "file_search"}],
               tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    with assistants_client.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        events = list(stream)
    done = [e.data for e in events if e.event == "thread.run.step.completed" and e.data.type == "tool_calls"]
    assert done and done[0].step_details.tool_calls[0].type == "file_search"  # type: ignore[union-attr]
    assert events[-1].event == "thread.run.completed"


def test_the_plugins_client_embeds_too(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    # An app's embeddings calls go to the real embedding model under the same fixture, with the SDK's defaults
    # (base64, decoded by the SDK); nothing of the script is used up.
    got = assistants_client.embeddings.create(input=["cat", "kitten", "spreadsheet"], model="text-embedding-3-small")
    cat, kitten, spreadsheet = (np.array(d.embedding) for d in got.data)
    assert len(cat) == 256 and cat @ kitten > cat @ spreadsheet + 0.3
