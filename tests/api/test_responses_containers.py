"""The code interpreter of the Responses face runs in containers: one made for `auto` and kept along a chain, or
the one named; what the code writes is cited as a container file and downloads through the containers API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.tools.code_interpreter import JupyterCodeRunner

WRITE = "open('report.txt', 'w').write('all good')\nprint(6 * 7)\n```"


@pytest.fixture
def coder(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI], tmp_path: Path,
          kernel_runner: Callable[..., JupyterCodeRunner]) -> Callable[[list[str]], openai.OpenAI]:
    def factory(replies: list[str]) -> openai.OpenAI:
        engine = make_engine(CannedBackend(replies), code_runner=kernel_runner(tmp_path / "sandbox"))
        return make_client(engine)
    return factory


def test_auto_makes_a_container_kept_along_the_chain(coder: Callable[[list[str]], openai.OpenAI]) -> None:
    client = coder([WRITE, "It printed 42 and wrote the report.", "x = 1\nprint(x + 1)\n```", "Two."])
    tool = {"type": "code_interpreter", "container": {"type": "auto"}}
    r = client.responses.create(model="gpt-4o", input="Write the report.", tools=[tool],  # type: ignore[list-item]
                                tool_choice="required", include=["code_interpreter_call.outputs"])
    call, message = r.output
    assert call.type == "code_interpreter_call" and call.outputs and call.outputs[0].logs == "42\n"  # type: ignore[union-attr]
    container = client.containers.retrieve(call.container_id)  # type: ignore[union-attr]
    assert container.status == "running"
    [citation] = [a for a in message.content[0].annotations if a.type == "container_file_citation"]  # type: ignore[union-attr]
    assert citation.container_id == container.id and citation.filename == "report.txt"  # type: ignore[union-attr]
    content = client.containers.files.content.retrieve(citation.file_id, container_id=container.id)  # type: ignore[union-attr]
    assert content.read() == b"all good"
    follow = client.responses.create(model="gpt-4o", input="And one more?", tools=[tool],  # type: ignore[list-item]
                                     tool_choice="required", previous_response_id=r.id)
    assert follow.output[0].container_id == container.id  # type: ignore[union-attr]


def test_a_named_container_and_its_errors(coder: Callable[[list[str]], openai.OpenAI]) -> None:
    client = coder(["print(open('data.csv').read())\n```", "It holds a,b."])
    box = client.containers.create(name="mine")
    client.containers.files.create(box.id, file=("data.csv", b"a,b\n"))
    tool = {"type": "code_interpreter", "container": box.id}
    r = client.responses.create(model="gpt-4o", input="What is in data.csv?", tools=[tool],  # type: ignore[list-item]
                                tool_choice="required", include=["code_interpreter_call.outputs"])
    assert r.output[0].container_id == box.id and "a,b" in r.output[0].outputs[0].logs  # type: ignore[union-attr]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="gpt-4o", input="Hi", tools=[  # type: ignore[list-item]
            {"type": "code_interpreter", "container": "cntr_missing"}])
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-4o", input="Hi", tools=[{"type": "code_interpreter"}])  # type: ignore[list-item]


def test_max_tool_calls_bounds_the_built_in_calls(coder: Callable[[list[str]], openai.OpenAI]) -> None:
    # The failed code would be retried once; with max_tool_calls=1 the model must answer instead.
    client = coder([" run Python code.", "boom()\n```", "It failed."])
    r = client.responses.create(model="gpt-4o", input="Run boom.", max_tool_calls=1, tools=[  # type: ignore[list-item]
        {"type": "code_interpreter", "container": {"type": "auto"}}])
    assert [o.type for o in r.output] == ["code_interpreter_call", "message"]
    assert r.output_text == "It failed." and r.max_tool_calls == 1


def test_code_run_in_a_conversation_is_one_of_its_items(coder: Callable[[list[str]], openai.OpenAI]) -> None:
    client = coder(["print(6 * 7)\n```", "It is 42.", "It was 42."])
    conv = client.conversations.create()
    tool = {"type": "code_interpreter", "container": {"type": "auto"}}
    r = client.responses.create(model="gpt-4o", input="6 times 7?", conversation=conv.id, tools=[tool],  # type: ignore[list-item]
                                tool_choice="required")
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "code_interpreter_call", "message"]
    assert items[1].id == r.output[0].id and items[1].outputs[0].logs == "42\n"  # type: ignore[union-attr]
    again = client.responses.create(model="gpt-4o", input="What was it?", conversation=conv.id)
    assert again.output_text == "It was 42."
