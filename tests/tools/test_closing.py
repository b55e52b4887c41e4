"""A call cut short where it began repeating is closed so that it still parses: code that compiles, JSON that
loads (tools/closing.py); and the engine ends such a call under its grammar instead of writing to the budget."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from engine.test_tooling import WEATHER, FakeRunner, start

from offline_assistants.engine import Engine
from offline_assistants.engine.loops import CALL_LOOP_TOKENS, LoopGuard
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.tools.closing import close_json, close_python


@pytest.mark.parametrize(("code", "closed"), [
    ('x = ["Cloudy", "Cloudy", "Clo', 'x = ["Cloudy", "Cloudy", "Clo"]'),
    ("def f(a):\n    return [a, a,", "def f(a):\n    return [a, a]"),
    ('print("hi")\nfor i in range(', 'print("hi")'),  # a header without its body: the line goes
    ("s = '''one\ntwo", "s = '''one\ntwo'''"),
    ("total = sum([1, 2,  # the rest (\n", "total = sum([1, 2,  # the rest (\n])"),
])
def test_code_is_closed_into_code_that_compiles(code: str, closed: str) -> None:
    assert close_python(code) == closed
    compile(closed, "<test>", "exec")


@pytest.mark.parametrize(("text", "closed"), [
    ('{"location": "San Francisco", "days": ["Mon", "Mon", "Mo', {"location": "San Francisco",
                                                                  "days": ["Mon", "Mon", "Mo"]}),
    ('{"a": 1, "b": ', {"a": 1}),  # a key without its value is dropped
    ('{"a": [{"x": 1}, {"x"', {"a": [{"x": 1}]}),
    ('{"q": "say \\"hi', {"q": 'say "hi'}),
    ("", {}),
])
def test_arguments_are_closed_into_json(text: str, closed: dict[str, object]) -> None:
    assert json.loads(close_json(text)) == closed


def test_the_guard_keeps_the_text_before_the_repetition() -> None:
    guard = LoopGuard(min_loop_tokens=CALL_LOOP_TOKENS, symbols=False)
    pieces = ["x", " = ", "["] + ['"Cloudy", '] * 100
    fed = 0
    for i, piece in enumerate(pieces):
        fed += 1
        if guard.feed(i if i < 3 else 3, piece):
            break
    assert fed == 3 + CALL_LOOP_TOKENS  # stopped as soon as it had repeated over the stretch
    assert "".join(pieces)[:guard.kept] == 'x = ["Cloudy", '  # one round of the loop kept


def test_symbols_are_not_watched_in_code() -> None:
    guard = LoopGuard(symbols=False)
    assert not any(guard.feed(i, "#" * 10 + "=") for i in range(20))


def test_a_code_call_that_repeats_ends_and_runs(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" run Python code.", 'x = ["Cloudy", ' + '"Cloudy", ' * 400, "Done."])
    runner = FakeRunner()
    engine = make_engine(backend, code_runner=runner)
    thread_id, run_id, _, ended = start(engine, [{"type": "code_interpreter"}])
    assert ended.wait(10)
    assert [c[1] for c in runner.calls] == ['x = ["Cloudy", "Cloudy"]']
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "completed"
    assert run.usage is not None and run.usage.completion_tokens < 100  # not the call's 512-token budget


def test_arguments_that_repeat_end_closed(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" call get_weather.", '{"city": "Oslo, ' + "Oslo, " * 400])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER], "Weather in Oslo?")
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "requires_action"
    arguments = run.required_action["submit_tool_outputs"]["tool_calls"][0]["function"]["arguments"]  # type: ignore[index]
    assert json.loads(arguments) == {"city": "Oslo, Oslo, "}
