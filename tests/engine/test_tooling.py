"""Tool rounds on a scripted model: the decision, the call, requires_action and its resumption, the bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from offline_assistants.engine import Engine
from offline_assistants.engine.events import FINAL_RUN_EVENTS, Event
from offline_assistants.llm.backend import JsonSchema
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.common import ListParams
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import RunCreate, SubmitToolOutputs, ToolOutput
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.tools.code_interpreter import ExecutionResult

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                             "parameters": {"type": "object",
                                                            "properties": {"city": {"type": "string"}}}}}


class FakeRunner:
    """Records code and answers like a kernel would; the real kernel is tested in tests/tools and tests/api."""

    def __init__(self, logs: str = "4\n", error: str | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Path]]] = []
        self.logs = logs
        self.error = error

    def execute(self, session_id: str, code: str, *, input_files: Any = None) -> ExecutionResult:
        self.calls.append((session_id, code, dict(input_files or {})))
        return ExecutionResult(logs=self.logs, error=self.error)

    def shutdown(self, session_id: str, *, remove_files: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def start(engine: Engine, tools: list[dict[str, Any]], request: str = "hi", **run: Any
          ) -> tuple[str, str, list[Event], threading.Event]:
    assistant = engine.assistants.create(AssistantCreate.model_validate({"model": "gpt-4o", "tools": tools}))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content=request)]))
    events: list[Event] = []
    ended = threading.Event()

    def listen(event: Event) -> None:
        events.append(event)
        if event.event in FINAL_RUN_EVENTS:
            ended.set()

    created, _ = engine.runs.create(thread.id, RunCreate.model_validate({"assistant_id": assistant.id, **run}), listen)
    return thread.id, created.id, events, ended


def test_code_round_then_answer(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" run Python code.", "print(2+2)\n```", "It is 4."])
    runner = FakeRunner()
    engine = make_engine(backend, code_runner=runner)
    thread_id, run_id, events, ended = start(engine, [{"type": "code_interpreter"}])
    assert ended.wait(10)
    assert runner.calls[0][:2] == (thread_id, "print(2+2)")
    names = [e.event for e in events]
    assert names[3:6] == ["thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta"]
    deltas = [e.data["delta"]["step_details"]["tool_calls"][0] for e in events if e.event == "thread.run.step.delta"]
    assert deltas[0]["id"].startswith("call_") and deltas[0]["type"] == "code_interpreter"
    code = "".join(d["code_interpreter"].get("input", "") for d in deltas)
    assert code == "print(2+2)"  # the closing fence never leaks into the streamed input
    assert deltas[-1]["code_interpreter"]["outputs"] == [{"type": "logs", "logs": "4\n", "index": 0}]
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "completed"
    steps = engine.runs.list_steps(thread_id, run_id, ListParams(order="asc")).data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details["tool_calls"][0]["code_interpreter"] == {
        "input": "print(2+2)", "outputs": [{"type": "logs", "logs": "4\n"}]}
    assert steps[0].usage is not None and steps[0].usage.completion_tokens > 0
    # The tool's output reached the model's next prompt.
    assert "Output:\n4" in backend.text(backend.prompts[-1])


def test_function_call_requires_action_then_resumes(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call get_weather.", '{"city": "Paris"}', "Sunny in Paris."])
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [WEATHER])
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "requires_action" and events[-1].event == "thread.run.requires_action"
    calls = run.required_action["submit_tool_outputs"]["tool_calls"]  # type: ignore[index]
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert run.usage is None
    resumed: list[Event] = []
    done = threading.Event()

    def listen(event: Event) -> None:
        resumed.append(event)
        if event.event in FINAL_RUN_EVENTS:
            done.set()

    engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(
        tool_outputs=[ToolOutput(tool_call_id=calls[0]["id"], output="22C, sunny")]), listen)
    assert done.wait(10)
    assert [e.event for e in resumed][:3] == ["thread.run.queued", "thread.run.in_progress",
                                              "thread.run.step.completed"]
    assert engine.runs.get(thread_id, run_id).status == "completed"
    step = engine.runs.list_steps(thread_id, run_id, ListParams(order="asc")).data[0]
    assert step.status == "completed" and step.step_details["tool_calls"][0]["function"]["output"] == "22C, sunny"
    assert "22C, sunny" in backend.text(backend.prompts[-1])


def test_arguments_quote_the_request_and_a_joined_value_makes_a_parallel_call(
        make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call get_weather.", '{"city": "Paris"}', '{"city": "Rome"}'])
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [WEATHER], "Weather in Paris and in Rome?")
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    calls = run.required_action["submit_tool_outputs"]["tool_calls"]  # type: ignore[index]
    assert [c["function"]["arguments"] for c in calls] == ['{"city": "Paris"}', '{"city": "Rome"}']
    assert len({c["id"] for c in calls}) == 2
    first, second = backend.samplings[-2].constraint, backend.samplings[-1].constraint
    assert isinstance(first, JsonSchema) and isinstance(second, JsonSchema)
    assert first.schema is not None and second.schema is not None
    assert {"Paris", "Rome"} <= set(first.schema["properties"]["city"]["enum"])  # phrases of the request
    assert second.schema["properties"]["city"]["enum"] == ["Rome"]  # the second call is held to Rome
    # The second call was written after the first, which its prompt holds; each call opened with its own delta.
    assert '"Paris"' in backend.text(backend.prompts[-1])
    openings = [e.data["delta"]["step_details"]["tool_calls"][0] for e in events
                if e.event == "thread.run.step.delta" and "id" in e.data["delta"]["step_details"]["tool_calls"][0]]
    assert [o["index"] for o in openings] == [0, 1] and [o["id"] for o in openings] == [c["id"] for c in calls]
    step = engine.runs.list_steps(thread_id, run_id, ListParams()).data[0]
    assert [c["function"]["arguments"] for c in step.step_details["tool_calls"]] == [
        '{"city": "Paris"}', '{"city": "Rome"}']
    # Submitting both outputs resumes the run.
    done = threading.Event()
    engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(tool_outputs=[
        ToolOutput(tool_call_id=c["id"], output=o) for c, o in zip(calls, ["18C", "25C"])]),
        lambda e: done.set() if e.event in FINAL_RUN_EVENTS else None)
    assert done.wait(10) and engine.runs.get(thread_id, run_id).status == "completed"
    assert "18C" in backend.text(backend.prompts[-1]) and "25C" in backend.text(backend.prompts[-1])


def test_no_parallel_call_when_parallel_tool_calls_is_off(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call get_weather.", '{"city": "Paris"}', '{"city": "Rome"}'])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER], "Weather in Paris and in Rome?", parallel_tool_calls=False)
    assert ended.wait(10)
    calls = engine.runs.get(thread_id, run_id).required_action["submit_tool_outputs"]["tool_calls"]  # type: ignore[index]
    assert [c["function"]["arguments"] for c in calls] == ['{"city": "Paris"}']


def test_submit_tool_outputs_validation(make_engine: Callable[..., Engine]) -> None:
    from offline_assistants.errors import InvalidRequest

    engine = make_engine(CannedBackend([" call get_weather.", "{}"]))
    thread_id, run_id, _, ended = start(engine, [WEATHER])
    assert ended.wait(10)
    with pytest.raises(InvalidRequest):
        engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(
            tool_outputs=[ToolOutput(tool_call_id="call_nope", output="x")]))
    with pytest.raises(InvalidRequest):
        engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(tool_outputs=[]))
    assert engine.runs.get(thread_id, run_id).status == "requires_action"
    cancelled = engine.runs.cancel(thread_id, run_id)
    assert cancelled.status == "cancelling"
    deadline = time.monotonic() + 5
    while engine.runs.get(thread_id, run_id).status != "cancelled" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.runs.get(thread_id, run_id).status == "cancelled"


def test_tool_choice_none_answers_without_tools(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["Just text."])
    runner = FakeRunner()
    engine = make_engine(backend, code_runner=runner)
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}], tool_choice="none")
    assert ended.wait(10)
    assert runner.calls == [] and engine.runs.get(thread_id, run_id).status == "completed"
    assert "python" not in backend.text(backend.prompts[0])


def test_forced_code_interpreter_skips_the_decision(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["x = 1\n```", "Done."])
    runner = FakeRunner(logs="")
    engine = make_engine(backend, code_runner=runner)
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}, WEATHER],
                                        tool_choice={"type": "code_interpreter"})
    assert ended.wait(10)
    assert [c[1] for c in runner.calls] == ["x = 1"]
    assert engine.runs.get(thread_id, run_id).status == "completed"


def test_required_tool_choice_excludes_answering(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call get_weather.", "{}"])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER, {"type": "code_interpreter"}], tool_choice="required")
    assert ended.wait(10)
    # Without a code runner, code_interpreter is not offered; with one tool left and answering excluded, the
    # model is not even asked: the call is made directly.
    assert engine.runs.get(thread_id, run_id).status == "requires_action"
    assert backend.samplings[0].constraint is not None and "city" not in backend.text(backend.prompts[0])[-20:]


def test_tool_rounds_are_bounded(make_engine: Callable[..., Engine]) -> None:
    replies = []
    for _ in range(5):
        replies += [" run Python code.", "boom()\n```"]
    backend = CannedBackend(replies + ["Gave up."])
    runner = FakeRunner(logs="NameError", error="NameError")
    engine = make_engine(backend, code_runner=runner, max_tool_rounds=3)
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}])
    assert ended.wait(10)
    assert len(runner.calls) == 2  # one call and one retry of failed code, then the model must answer
    assert engine.runs.get(thread_id, run_id).status == "completed"


def test_unknown_tool_choice_function_is_refused(make_engine: Callable[..., Engine]) -> None:
    from offline_assistants.errors import InvalidRequest

    engine = make_engine(CannedBackend())
    with pytest.raises(InvalidRequest) as err:
        start(engine, [WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert err.value.param == "tool_choice"


def test_a_native_model_decides_and_writes_its_call_in_its_own_syntax(make_engine: Callable[..., Engine]) -> None:
    # A model whose template defines tool calls takes the same path as any: the scored decision, then the
    # arguments under a grammar, opened in its own syntax; its template lists the tools and reads the call back.
    backend = CannedBackend([" call get_weather.", '{"city": "Oslo"}', "It is 17 in Oslo."],
                            native_tool_format="hermes")
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [WEATHER], "Weather in Oslo?")
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "requires_action"
    call = run.required_action["submit_tool_outputs"]["tool_calls"][0]  # type: ignore[index]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert "<tool> get_weather" in backend.text(backend.prompts[0])  # tools went through the template
    assert backend.text(backend.prompts[-1]).endswith('<tool_call>\n{"name": "get_weather", "arguments": ')
    assert isinstance(backend.samplings[0].constraint, JsonSchema)
    ended.clear()
    engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(tool_outputs=[
        ToolOutput(tool_call_id=call["id"], output="17")]), events.append)
    deadline = time.monotonic() + 10
    while engine.runs.get(thread_id, run_id).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.runs.get(thread_id, run_id).status == "completed"
    # The call and its output read back through the template's own rendering (CannedBackend.encode_exchange).
    assert '<call> get_weather {"city": "Oslo"} </s> <tool> 17 </s>' in backend.text(backend.prompts[-1])


def test_an_answer_never_shows_a_call_written_as_text(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" answer from what", 'Let me check. <tool_call>\n{"name": "get_weather"}'],
                            native_tool_format="hermes")
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [WEATHER])
    assert ended.wait(10)
    assert engine.runs.get(thread_id, run_id).status == "completed"
    message = engine.threads.list_messages(thread_id, ListParams(), run_id=run_id).data[0]
    assert message.content[0]["text"]["value"] == "Let me check."
    deltas = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in events
                     if e.event == "thread.message.delta")
    assert deltas == "Let me check."


def test_an_answer_that_is_only_a_call_states_the_tool_output_instead(make_engine: Callable[..., Engine]) -> None:
    # Our syntax (no native format): after the output, the model writes a call again where it must answer.
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    backend = CannedBackend([" call get_weather.", '{"city": "Oslo"}', call, call])
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [WEATHER], "Weather in Oslo?")
    assert ended.wait(10)
    call = engine.runs.get(thread_id, run_id).required_action["submit_tool_outputs"]["tool_calls"][0]  # type: ignore[index]
    engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(tool_outputs=[
        ToolOutput(tool_call_id=call["id"], output="Cloudy, 17 C")]), events.append)
    deadline = time.monotonic() + 10
    while engine.runs.get(thread_id, run_id).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
    message = engine.threads.list_messages(thread_id, ListParams(), run_id=run_id).data[0]
    assert message.content[0]["text"]["value"] == "Cloudy, 17 C"
    # Asked again first, with the tools left out of the system prompt (the call and its output still shown).
    retry = backend.text(backend.prompts[-1])
    assert "get_weather:" not in retry.split("</s>")[0] and "Cloudy, 17 C" in retry


def test_native_code_call_runs_in_the_kernel(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call python.", '{"code": "print(\\"a\\")\\nprint(1)"}', "One."],
                            native_tool_format="hermes")
    runner = FakeRunner(logs="1\n")
    engine = make_engine(backend, code_runner=runner)
    thread_id, run_id, events, ended = start(engine, [{"type": "code_interpreter"}])
    assert ended.wait(10)
    assert [c[1] for c in runner.calls] == ['print("a")\nprint(1)']
    assert engine.runs.get(thread_id, run_id).status == "completed"
    assert any(backend.text(p).endswith('<tool_call>\n{"name": "python", "arguments": ') for p in backend.prompts)
    streamed = "".join(e.data["delta"]["step_details"]["tool_calls"][0].get("code_interpreter", {}).get("input", "")
                       for e in events if e.event == "thread.run.step.delta")
    assert streamed == 'print("a")\nprint(1)'  # the JSON string unescaped as it streams


def test_without_a_code_runner_code_interpreter_is_not_offered(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["Plain answer."])
    engine = make_engine(backend)  # as with --no-code-interpreter
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}])
    assert ended.wait(10)
    assert engine.runs.get(thread_id, run_id).status == "completed"
    steps = engine.runs.list_steps(thread_id, run_id, ListParams()).data
    assert [s.type for s in steps] == ["message_creation"]
    assert backend.samplings[0].constraint is None


def test_attachments_and_tool_resources_reach_the_kernel(make_engine: Callable[..., Engine], tmp_path: Path) -> None:
    import io

    backend = CannedBackend(["print(1)\n```", "Done."])
    runner = FakeRunner()
    engine = make_engine(backend, code_runner=runner)
    attached = engine.files.upload(io.BytesIO(b"a,b\n"), "data.csv", "assistants")
    ignored = engine.files.upload(io.BytesIO(b"x"), "search-only.txt", "assistants")
    resource = engine.files.upload(io.BytesIO(b"{}"), "config.json", "assistants")
    assistant = engine.assistants.create(AssistantCreate.model_validate({
        "model": "m", "tools": [{"type": "code_interpreter"}],
        "tool_resources": {"code_interpreter": {"file_ids": [resource.id]}}}))
    thread = engine.threads.create(ThreadCreate.model_validate({"messages": [{
        "role": "user", "content": "use them", "attachments": [
            {"file_id": attached.id, "tools": [{"type": "code_interpreter"}]},
            {"file_id": ignored.id, "tools": [{"type": "file_search"}]}]}]}))
    engine.runs.create(thread.id, RunCreate.model_validate(
        {"assistant_id": assistant.id, "tool_choice": {"type": "code_interpreter"}}))
    assert engine.wait_idle(10)
    files = runner.calls[0][2]
    assert sorted(files) == ["config.json", "data.csv"]
    assert files["data.csv"].read_bytes() == b"a,b\n"


def test_budget_exhausted_during_a_tool_call_leaves_no_open_step(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["x = 1 + 1 + 1 + 1 + 1 + 1\n```"])
    engine = make_engine(backend, code_runner=FakeRunner())
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}],
                                        tool_choice={"type": "code_interpreter"}, max_completion_tokens=3)
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "incomplete" and run.incomplete_details == {"reason": "max_completion_tokens"}
    steps = engine.runs.list_steps(thread_id, run_id, ListParams()).data
    assert [s.status for s in steps] == ["cancelled"] and steps[0].cancelled_at is not None


def test_deleting_a_thread_stops_its_kernel(make_engine: Callable[..., Engine]) -> None:
    class Recording(FakeRunner):
        def __init__(self) -> None:
            super().__init__()
            self.stopped: list[str] = []

        def shutdown(self, session_id: str, *, remove_files: bool = False) -> None:
            assert remove_files
            self.stopped.append(session_id)

    runner = Recording()
    engine = make_engine(CannedBackend(), code_runner=runner)
    thread = engine.threads.create(ThreadCreate())
    engine.threads.delete(thread.id)
    assert runner.stopped == [thread.id]


def test_submit_tool_outputs_raced_against_expiry_has_one_winner(make_engine: Callable[..., Engine]) -> None:
    from offline_assistants.errors import InvalidRequest

    for attempt in range(10):
        backend = CannedBackend([" call get_weather.", '{"city": "Paris"}', "Sunny."])
        engine = make_engine(backend)
        thread_id, run_id, _, _ = start(engine, [WEATHER])
        deadline = time.monotonic() + 10
        while engine.runs.get(thread_id, run_id).status != "requires_action":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        engine.store.runs.update(run_id, {"expires_at": 1})  # long past: the next sweep expires it
        call_id = engine.runs.get(thread_id, run_id).required_action["submit_tool_outputs"]["tool_calls"][0]["id"]  # type: ignore[index]
        outcome: list[str] = []

        def submit(engine: Engine, thread_id: str, run_id: str, call_id: str, outcome: list[str]) -> None:
            try:
                engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(
                    tool_outputs=[ToolOutput(tool_call_id=call_id, output="22C")]))
                outcome.append("submitted")
            except InvalidRequest:
                outcome.append("refused")

        racer = threading.Thread(target=submit, args=(engine, thread_id, run_id, call_id, outcome))
        racer.start()
        engine._expire()
        racer.join()
        assert engine.wait_idle(10)
        status = engine.runs.get(thread_id, run_id).status
        ended = (outcome, status == "expired")
        assert ended in ((["submitted"], False), (["refused"], True)), (attempt, outcome, status)


def test_a_tool_loop_past_the_window_cuts_its_oldest_exchanges_and_goes_on(
        make_engine: Callable[..., Engine]) -> None:
    # Two code rounds (the first fails, so one retry is offered) whose outputs together overflow a small window.
    class Outputs(FakeRunner):
        def execute(self, session_id: str, code: str, *, input_files: Any = None) -> ExecutionResult:
            self.calls.append((session_id, code, dict(input_files or {})))
            n = len(self.calls)
            return ExecutionResult(logs=" ".join(f"out{n}-{i}" for i in range(200)),
                                   error="boom" if n == 1 else None)

    backend = CannedBackend([" run Python code.", "first()\n```", " run Python code.", "second()\n```", "Done."],
                              n_ctx=512)
    engine = make_engine(backend, code_runner=Outputs())
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}], "Compute it.")
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "completed", run.last_error
    last = backend.text(backend.prompts[-1])
    assert len(backend.prompts[-1]) <= 512
    assert "out2-199" in last and "out1-0" not in last  # the newest exchange kept, the oldest cut
    assert "Compute it." in last  # the request the tools answer stays in view


def test_a_turn_end_written_as_text_ends_the_answer_without_tools(make_engine: Callable[..., Engine]) -> None:
    # A model on the ChatML stand-in that was not trained on it writes the markers as text, then a made-up turn.
    backend = CannedBackend(["Paris is the capital.<|im_end|>\n<|im_start|>user\nAnd Rome?"])
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [])
    assert ended.wait(10)
    message = engine.threads.list_messages(thread_id, ListParams(), run_id=run_id).data[0]
    assert message.content[0]["text"]["value"] == "Paris is the capital."
    deltas = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in events
                     if e.event == "thread.message.delta")
    assert deltas == "Paris is the capital."


BMI = {"type": "function", "function": {"name": "bmi", "description": "Body mass index from weight and height",
       "parameters": {"type": "object", "properties": {"weight": {"type": "number"}, "height": {"type": "number"}},
                      "required": ["weight", "height"]}}}


def test_a_function_whose_required_numbers_were_never_said_is_not_called(make_engine: Callable[..., Engine]) -> None:
    # Nothing to score: the only function needs two numbers the user has not given, so the run answers.
    backend = CannedBackend(["Tell me your weight and height."])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [BMI], "What is my BMI?")
    assert ended.wait(10)
    assert engine.runs.get(thread_id, run_id).status == "completed"
    assert backend.scored == [] and backend.samplings[0].constraint is None


def test_numbers_said_a_turn_earlier_count_for_the_call(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call bmi.", '{"weight": 70, "height": 1.8}'])
    engine = make_engine(backend)
    assistant = engine.assistants.create(AssistantCreate.model_validate({"model": "gpt-4o", "tools": [BMI]}))
    thread = engine.threads.create(ThreadCreate(messages=[
        MessageCreate(role="user", content="I weigh 70 kg and I am 1.8 m tall."),
        MessageCreate(role="assistant", content="Noted."), MessageCreate(role="user", content="What is my BMI?")]))
    ended = threading.Event()
    run, _ = engine.runs.create(thread.id, RunCreate.model_validate({"assistant_id": assistant.id}),
                                lambda e: ended.set() if e.event == "thread.run.requires_action" else None)
    assert ended.wait(10)
    assert engine.runs.get(thread.id, run.id).status == "requires_action"


def test_required_calls_a_function_even_when_its_numbers_were_not_said(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(['{"weight": 70, "height": 1.8}'])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [BMI], "What is my BMI?", tool_choice="required")
    assert ended.wait(10)
    assert engine.runs.get(thread_id, run_id).status == "requires_action"


def test_an_answer_that_only_opened_a_call_is_asked_again(make_engine: Callable[..., Engine]) -> None:
    # Qwen2.5-Coder-1.5B after a tool's output: a fence or a brace, then the call as text. Nothing was said.
    call = '```json\n{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    backend = CannedBackend([" call get_weather.", '{"city": "Oslo"}', call, "It is 17 C in Oslo."])
    engine = make_engine(backend)
    thread_id, run_id, events, ended = start(engine, [WEATHER], "Weather in Oslo?")
    assert ended.wait(10)
    call_id = engine.runs.get(thread_id, run_id).required_action["submit_tool_outputs"]["tool_calls"][0]["id"]  # type: ignore[index]
    engine.runs.submit_tool_outputs(thread_id, run_id, SubmitToolOutputs(tool_outputs=[
        ToolOutput(tool_call_id=call_id, output="17 C")]), events.append)
    deadline = time.monotonic() + 10
    while engine.runs.get(thread_id, run_id).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
    message = engine.threads.list_messages(thread_id, ListParams(), run_id=run_id).data[0]
    assert message.content[0]["text"]["value"] == "It is 17 C in Oslo."
