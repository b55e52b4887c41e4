"""Code interpreter end to end: the real model writes the code (copying it at temperature 0), a real Jupyter
kernel runs it, the official SDK reads the steps, files and streamed deltas."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from openai import AssistantEventHandler

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.tools.code_interpreter import JupyterCodeRunner


@pytest.fixture
def ci_engine(make_engine: Callable[..., Engine], real_backend: ModelBackend, tmp_path: Path,
              kernel_runner: Callable[..., JupyterCodeRunner]) -> Iterator[Engine]:
    runner = kernel_runner(tmp_path / "sandbox", timeout_s=3, memory_mb=1024)
    yield make_engine(real_backend, code_runner=runner, max_output_tokens=24)


@pytest.fixture
def ci_client(ci_engine: Engine, make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    return make_client(ci_engine)


def _assistant(client: openai.OpenAI) -> str:
    return client.beta.assistants.create(
        model="gpt-4o", instructions="You run Python code.", tools=[{"type": "code_interpreter"}], temperature=0,
    ).id


def _run_code(client: openai.OpenAI, assistant_id: str, thread_id: str, code: str) -> tuple[object, object]:
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, tool_choice={"type": "code_interpreter"},
        additional_messages=[{"role": "user", "content": f"Run this code:\n```python\n{code}\n```"}],
    )
    steps = client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run.id, order="asc").data
    tool_steps = [s for s in steps if s.type == "tool_calls"]
    assert tool_steps, f"no tool step in {run.status} run"
    call = tool_steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter"
    return run, call


def test_print_gives_logs_output(ci_client: openai.OpenAI) -> None:
    assistant_id = _assistant(ci_client)
    thread = ci_client.beta.threads.create()
    run, call = _run_code(ci_client, assistant_id, thread.id, "print(2+2)")
    assert run.status == "completed"  # type: ignore[attr-defined]
    assert call.code_interpreter.input == "print(2+2)"  # type: ignore[attr-defined]
    logs = [o for o in call.code_interpreter.outputs if o.type == "logs"]  # type: ignore[attr-defined]
    assert logs and logs[0].logs == "4\n"
    messages = ci_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data  # type: ignore[attr-defined]
    assert messages and messages[0].role == "assistant"


def test_variables_persist_per_thread_only(ci_client: openai.OpenAI) -> None:
    assistant_id = _assistant(ci_client)
    first = ci_client.beta.threads.create()
    _run_code(ci_client, assistant_id, first.id, "secret = 41 + 1")
    _, call = _run_code(ci_client, assistant_id, first.id, "print(secret)")
    assert call.code_interpreter.outputs[0].logs == "42\n"  # type: ignore[attr-defined]
    other = ci_client.beta.threads.create()
    _, call = _run_code(ci_client, assistant_id, other.id, "print(secret)")
    assert "NameError" in call.code_interpreter.outputs[0].logs  # type: ignore[attr-defined]


def test_plot_becomes_a_downloadable_image(ci_client: openai.OpenAI) -> None:
    assistant_id = _assistant(ci_client)
    thread = ci_client.beta.threads.create()
    _, call = _run_code(ci_client, assistant_id, thread.id,
                        "import matplotlib.pyplot as plt; plt.plot([1, 2, 3]); plt.show()")
    images = [o for o in call.code_interpreter.outputs if o.type == "image"]  # type: ignore[attr-defined]
    assert len(images) == 1
    file = ci_client.files.retrieve(images[0].image.file_id)
    assert file.purpose == "assistants_output"
    content = ci_client.files.content(images[0].image.file_id).read()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) == file.bytes


def test_endless_loop_is_stopped_and_thread_recovers(ci_client: openai.OpenAI) -> None:
    assistant_id = _assistant(ci_client)
    thread = ci_client.beta.threads.create()
    start = time.monotonic()
    run, call = _run_code(ci_client, assistant_id, thread.id, "while True: pass")
    assert time.monotonic() - start < 30
    assert run.status == "completed"  # type: ignore[attr-defined]
    _, call = _run_code(ci_client, assistant_id, thread.id, "print(2+2)")
    assert call.code_interpreter.outputs[0].logs == "4\n"  # type: ignore[attr-defined]


def test_large_allocation_is_refused_and_kernel_recovers(ci_client: openai.OpenAI) -> None:
    assistant_id = _assistant(ci_client)
    thread = ci_client.beta.threads.create()
    _, call = _run_code(ci_client, assistant_id, thread.id, "x = bytearray(8 * 1024 ** 3)")
    assert "MemoryError" in call.code_interpreter.outputs[0].logs  # type: ignore[attr-defined]
    _, call = _run_code(ci_client, assistant_id, thread.id, "print(2+2)")
    assert call.code_interpreter.outputs[0].logs == "4\n"  # type: ignore[attr-defined]


def test_file_written_by_code_is_annotated_on_the_message(ci_client: openai.OpenAI) -> None:
    assistant_id = _assistant(ci_client)
    thread = ci_client.beta.threads.create()
    run, _ = _run_code(ci_client, assistant_id, thread.id, "open('out.txt', 'w').write('hello')")
    message = ci_client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0]  # type: ignore[attr-defined]
    text = message.content[0].text  # type: ignore[union-attr]
    paths = [a for a in text.annotations if a.type == "file_path"]
    assert len(paths) == 1 and paths[0].text == "sandbox:/mnt/data/out.txt"
    assert text.value[paths[0].start_index:paths[0].end_index] == paths[0].text
    assert ci_client.files.content(paths[0].file_path.file_id).read() == b"hello"  # type: ignore[union-attr]


def test_uploaded_file_is_visible_to_code(ci_client: openai.OpenAI) -> None:
    uploaded = ci_client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    assistant = ci_client.beta.assistants.create(
        model="gpt-4o", instructions="You run Python code.", tools=[{"type": "code_interpreter"}], temperature=0,
        tool_resources={"code_interpreter": {"file_ids": [uploaded.id]}},
    )
    thread = ci_client.beta.threads.create()
    _, call = _run_code(ci_client, assistant.id, thread.id, "print(open('data.csv').read())")
    assert "a,b" in call.code_interpreter.outputs[0].logs  # type: ignore[attr-defined]


def test_seed_math_tutor_stream_with_tool_call_handler(
    ci_client: openai.OpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    assistant = ci_client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor. Write and run code to answer math questions.",
        tools=[{"type": "code_interpreter"}],
        model="gpt-4o",
    )
    thread = ci_client.beta.threads.create()
    ci_client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="I need to solve the equation `3x + 11 = 14`. Can you help me?"
    )

    class EventHandler(AssistantEventHandler):
        def on_text_created(self, text) -> None:  # noqa: ANN001
            print("\nassistant > ", end="", flush=True)

        def on_text_delta(self, delta, snapshot):  # noqa: ANN001, ANN201
            print(delta.value, end="", flush=True)

        def on_tool_call_created(self, tool_call):  # noqa: ANN001, ANN201
            print(f"\nassistant > {tool_call.type}\n", flush=True)

        def on_tool_call_delta(self, delta, snapshot):  # noqa: ANN001, ANN201
            if delta.type == "code_interpreter":
                if delta.code_interpreter.input:
                    print(delta.code_interpreter.input, end="", flush=True)
                if delta.code_interpreter.outputs:
                    print("\n\noutput >", flush=True)
                    for output in delta.code_interpreter.outputs:
                        if output.type == "logs":
                            print(f"\n{output.logs}", flush=True)

    with ci_client.beta.threads.runs.stream(
        thread_id=thread.id,
        assistant_id=assistant.id,
        instructions="Please address the user as Jane Doe. The user has a premium account.",
        event_handler=EventHandler(),
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    out = capsys.readouterr().out
    assert run.status == "completed"
    steps = ci_client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc").data
    assert [s.type for s in steps][0] == "tool_calls" and steps[-1].type == "message_creation"
    code = steps[0].step_details.tool_calls[0].code_interpreter.input  # type: ignore[union-attr]
    assert "\nassistant > code_interpreter\n" in out and code in out
    if steps[0].step_details.tool_calls[0].code_interpreter.outputs:  # type: ignore[union-attr]
        assert "\n\noutput >" in out
    assert out.rstrip().endswith(ci_client.beta.threads.messages.list(thread_id=thread.id).data[0]
                                 .content[0].text.value.rstrip())  # type: ignore[union-attr]
