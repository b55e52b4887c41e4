"""The tool decision on a scripted model: each option scored whole by its log-probability, the calibrated bias
between answering and calling, ties answer, and what the decision is shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from offline_assistants.engine import Engine, tooling
from offline_assistants.llm.scripted import ScriptedBackend
from test_tooling import WEATHER, start

CALL, ANSWER = " call get_weather.", " answer directly."


def decide(make_engine: Callable[..., Engine], scores: dict[str, float], **run: Any) -> tuple[str, ScriptedBackend]:
    backend = ScriptedBackend([scores, '{"city": "Paris"}', "Sunny."])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER], **run)
    assert ended.wait(10)
    return engine.runs.get(thread_id, run_id).status, backend


def test_the_most_likely_option_wins(make_engine: Callable[..., Engine]) -> None:
    status, backend = decide(make_engine, {CALL: -1.0, ANSWER: -2.5})
    assert status == "requires_action"
    assert backend.scored[0] == [CALL, ANSWER]
    assert backend.text(backend.prompts[0]).endswith("<assistant> I will")  # scored as the turn's opening
    status, _ = decide(make_engine, {CALL: -2.5, ANSWER: -1.0})
    assert status == "completed"


def test_whole_options_are_scored_not_first_tokens(make_engine: Callable[..., Engine]) -> None:
    # Two functions that start alike: the scores of the whole options decide.
    other = {"type": "function", "function": {"name": "get_weather_alerts", "parameters": {"type": "object"}}}
    backend = ScriptedBackend([{" call get_weather_alerts.": -0.4, CALL: -0.9, ANSWER: -3.0}, "{}"])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER, other])
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.required_action["submit_tool_outputs"]["tool_calls"][0]["function"]["name"] == "get_weather_alerts"  # type: ignore[index]


def test_the_answer_bias_moves_the_threshold(make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    scores = {CALL: -1.0, ANSWER: -1.5}
    assert decide(make_engine, scores)[0] == "requires_action"
    monkeypatch.setattr(tooling, "ANSWER_BIAS", 1.0)
    assert decide(make_engine, scores)[0] == "completed"
    monkeypatch.setattr(tooling, "ANSWER_BIAS", -1.0)
    assert decide(make_engine, {CALL: -2.2, ANSWER: -1.5})[0] == "requires_action"


def test_a_tie_answers(make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tooling, "ANSWER_BIAS", 0.0)
    assert decide(make_engine, {CALL: -1.0, ANSWER: -1.0})[0] == "completed"


def test_required_offers_no_answer_option(make_engine: Callable[..., Engine]) -> None:
    other = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
    backend = ScriptedBackend([{" call get_time.": -0.1, CALL: -3.0}, "{}"])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER, other], tool_choice="required")
    assert ended.wait(10)
    assert backend.scored[0] == [CALL, " call get_time."]
    assert engine.runs.get(thread_id, run_id).status == "requires_action"
