"""What the engine gives the answer after tool calls (llm/answer_bias.py): the tools' results to copy figures from
and the openings of the run's calls, to a backend that declares `steers_answers`, and nothing to one that does
not. On the scripted model; tests/llm/test_answer_bias.py holds what the bias does with them."""

from __future__ import annotations

import threading
from collections.abc import Callable

from offline_assistants.engine import Engine
from offline_assistants.engine.events import FINAL_RUN_EVENTS, Event
from offline_assistants.llm.backend import AnswerBias
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.llm.toolcalls import CODE_OPEN
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import RunCreate
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.tools.code_interpreter import ExecutionResult

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}


class Kernel:
    def execute(self, session_id: str, code: str, *, input_files: object = None) -> ExecutionResult:
        return ExecutionResult(logs="7006652\n")

    def shutdown(self, session_id: str, *, remove_files: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def run_code_then_answer(make_engine: Callable[..., Engine], backend: CannedBackend, **run: object) -> None:
    engine = make_engine(backend, code_runner=Kernel())
    assistant = engine.assistants.create(AssistantCreate.model_validate(
        {"model": "gpt-4o", "tools": [{"type": "code_interpreter"}, WEATHER]}))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="1234 * 5678?")]))
    ended = threading.Event()

    def listen(event: Event) -> None:
        if event.event in FINAL_RUN_EVENTS:
            ended.set()

    engine.runs.create(thread.id, RunCreate.model_validate({"assistant_id": assistant.id, **run}), listen)
    assert ended.wait(10)


def test_the_answer_after_a_tool_call_copies_from_its_result_and_never_opens_as_a_call(
        make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" run Python code.", "print(1234 * 5678)\n```", "It is 7006652."])
    backend.steers_answers = True
    run_code_then_answer(make_engine, backend)
    code, answer = backend.samplings[-2], backend.samplings[-1]
    assert code.answer is None  # only the answer is steered: the code is written under its own constraint
    assert answer.answer == AnswerBias(copy_from=("7006652",),  # the result itself, not its wrapping
                                       never_open=(CODE_OPEN, '<tool_call>\n{"name": "get_weather", "arguments": '))


def test_under_response_format_the_answer_copies_but_is_not_kept_from_openings(
        make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" run Python code.", "print(1234 * 5678)\n```", '{"product": 7006652}'])
    backend.steers_answers = True
    run_code_then_answer(make_engine, backend, response_format={"type": "json_object"})
    # JSON opens with "{" as a call's body does: the grammar holds the answer, no opening is ruled out.
    assert backend.samplings[-1].answer == AnswerBias(copy_from=("7006652",), never_open=())


def test_a_backend_that_does_not_steer_answers_is_given_nothing(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" run Python code.", "print(1234 * 5678)\n```", "It is 7006652."])
    assert not backend.steers_answers
    run_code_then_answer(make_engine, backend)
    assert [s.answer for s in backend.samplings] == [None, None]


def test_a_run_without_tools_is_not_steered(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["Hello."])
    backend.steers_answers = True
    engine = make_engine(backend)
    assistant = engine.assistants.create(AssistantCreate.model_validate({"model": "gpt-4o"}))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="Hi")]))
    ended = threading.Event()
    engine.runs.create(thread.id, RunCreate.model_validate({"assistant_id": assistant.id}),
                       lambda e: ended.set() if e.event in FINAL_RUN_EVENTS else None)
    assert ended.wait(10)
    assert backend.samplings[-1].answer is None
