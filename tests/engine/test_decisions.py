"""The tool decision (engine/decision.py): options described and scored whole, calibrated against the scores
after a request that says nothing, biased per kind, raised by the words a request shares with a function, the
function then named, a second one added for a second clause; on a scripted scorer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_tooling import WEATHER, start

from offline_assistants.engine import Engine
from offline_assistants.engine.decision import ANSWER_TEXT, Decider, option_text
from offline_assistants.llm.backend import Decision, ToolOption
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.tools import functions
from offline_assistants.tools.base import ToolContext
from offline_assistants.tools.code_interpreter import tool as code_tool
from offline_assistants.tools.code_interpreter.tool import SENTENCE as CODE_TEXT
from offline_assistants.tools.code_interpreter.tool import CodeTool
from offline_assistants.tools.functions import FunctionTool

ALERTS = {"type": "function", "function": {"name": "get_weather_alerts", "description": "Storm warnings. Long text",
                                           "parameters": {"type": "object"}}}
CODE = {"type": "code_interpreter"}
USE_WEATHER = " use get_weather to weather in a city."


class Scorer(CannedBackend):
    """Scores from tables: `talk` in the conversation, `null` after the empty request, `named` for " call X."."""

    def __init__(self, talk: dict[str, float], null: dict[str, float] | None = None,
                 named: dict[str, float] | None = None) -> None:
        super().__init__()
        self.talk, self.null, self.named = talk, null or {}, named or {}
        self.calls: list[tuple[str | None, list[str]]] = []

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        texts = [self.text(o) for o in options]
        self.calls.append((cache_key, texts))
        table = self.null if cache_key is None else self.named if texts[0].startswith(" call") else self.talk
        return [table.get(t, -10.0) for t in texts]


def opt(spec: dict[str, Any]) -> ToolOption:
    """A tool as the decision sees it, worded by its plug-in."""
    tool = CodeTool(runner=None) if spec["type"] == "code_interpreter" else FunctionTool()  # type: ignore[arg-type]
    option = tool.option(spec, ToolContext("thread_1", input_files=dict, save_output=lambda data, name: ""))
    assert option is not None
    return option


class Decided:
    """A Decision with its options mapped back to the tool specs the test offered."""

    def __init__(self, decision: Decision, specs: list[dict[str, Any] | None]) -> None:
        by_key = {opt(s).key: s for s in specs if s is not None}
        self.tool = by_key[decision.tool.key] if decision.tool is not None else None
        self.also = [by_key[o.key] for o in decision.also]
        self.read = decision.read


def decide(scorer: Scorer, options: list[dict[str, Any] | None], request: str = "Paris?") -> Decided:
    system = scorer.encode_system("Be helpful.")
    prompt = system + scorer.encode_message("user", request) + scorer.generation_prefix()
    chosen = Decider(scorer).choose(system, prompt, [opt(o) if o is not None else None for o in options],
                                    request=request, cache_key="thread_1")
    return Decided(chosen, options)


def choose(scorer: Scorer, options: list[dict[str, Any] | None], request: str = "Paris?") -> dict[str, Any] | None:
    # "Paris?" shares no word with any tool here: the model's scores alone decide.
    return decide(scorer, options, request).tool


def test_option_texts_say_what_each_choice_does() -> None:
    assert option_text(None) == ANSWER_TEXT and option_text(opt(CODE)) == CODE_TEXT
    assert option_text(opt(WEATHER)) == USE_WEATHER
    assert option_text(opt(ALERTS)) == " use get_weather_alerts to storm warnings."  # the first sentence only


def test_the_calibrated_score_decides_not_the_raw_one() -> None:
    # Raw, the model prefers answering; but it prefers answering after *any* request. What this request adds
    # (the pointwise mutual information) favours the call.
    scorer = Scorer(talk={ANSWER_TEXT: -1.0, USE_WEATHER: -2.0}, null={ANSWER_TEXT: -0.5, USE_WEATHER: -5.0})
    assert choose(scorer, [WEATHER, None]) is WEATHER
    scorer = Scorer(talk={ANSWER_TEXT: -1.0, USE_WEATHER: -2.0}, null={ANSWER_TEXT: -1.0, USE_WEATHER: -2.0})
    assert choose(scorer, [WEATHER, None]) is None


def test_the_no_request_scores_are_computed_once_per_tool_set() -> None:
    scorer = Scorer(talk={ANSWER_TEXT: -1.0, USE_WEATHER: -1.0})
    decider = Decider(scorer)
    system = scorer.encode_system("Be helpful.")
    for question in ("Weather in Paris?", "And in Rome?"):
        prompt = system + scorer.encode_message("user", question) + scorer.generation_prefix()
        read = decider.choose(system, prompt, [opt(WEATHER), None], request=question, cache_key="thread_1").read
    assert [key for key, _ in scorer.calls] == ["thread_1", None, "thread_1"]
    assert read == len(prompt) + 2  # the second decision read only its own prompt and the lead


def test_biases_per_kind_move_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    talk = {ANSWER_TEXT: -1.0, USE_WEATHER: -1.5, CODE_TEXT: -0.5}
    assert choose(Scorer(talk), [WEATHER, CODE, None]) is None  # code -0.5-2.5, function -1.5-2.5: answer
    monkeypatch.setattr(code_tool, "BIAS", 0.0)  # each tool's bias is its plug-in's
    assert choose(Scorer(talk), [WEATHER, CODE, None]) is CODE
    monkeypatch.setattr(code_tool, "BIAS", -2.5)
    monkeypatch.setattr(functions, "BIAS", 1.0)
    assert choose(Scorer(talk), [WEATHER, CODE, None]) is WEATHER


def test_a_tie_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functions, "BIAS", 0.0)
    assert choose(Scorer({ANSWER_TEXT: -1.0, USE_WEATHER: -1.0}), [WEATHER, None]) is None


def test_the_function_is_named_among_the_functions_alone() -> None:
    use_alerts = option_text(opt(ALERTS))
    scorer = Scorer(talk={ANSWER_TEXT: -5.0, USE_WEATHER: -1.0, use_alerts: -3.0},
                    named={" call get_weather.": -2.0, " call get_weather_alerts.": -0.5})
    assert choose(scorer, [WEATHER, ALERTS, None]) is ALERTS
    assert scorer.calls[-1][1] == [" call get_weather.", " call get_weather_alerts."]


class TogetherScorer(Scorer):
    """A scorer that takes a call's options side by side (a GPU): each text scored from its own table."""

    scores_together = True

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        texts = [self.text(o) for o in options]
        self.calls.append((cache_key, texts))
        tables = [self.null if cache_key is None else self.named if t.startswith(" call") else self.talk
                  for t in texts]
        return [table.get(t, -10.0) for table, t in zip(tables, texts)]


@pytest.mark.parametrize("talk_alerts", [-3.0, -0.5])
def test_a_backend_that_scores_together_is_asked_once_and_decides_alike(talk_alerts: float) -> None:
    use_alerts = option_text(opt(ALERTS))
    talk = {ANSWER_TEXT: -5.0, USE_WEATHER: -1.0, use_alerts: talk_alerts}
    named = {" call get_weather.": -2.0, " call get_weather_alerts.": -0.5}
    apart, together = Scorer(talk, named=named), TogetherScorer(talk, named=named)
    first, second = decide(apart, [WEATHER, ALERTS, None]), decide(together, [WEATHER, ALERTS, None])
    assert (first.tool, first.also, first.read) == (second.tool, second.also, second.read) == (ALERTS, [], first.read)
    conversation = [texts for key, texts in together.calls if key is not None]
    assert len(conversation) == 1 and conversation[0][-2:] == [" call get_weather.", " call get_weather_alerts."]
    assert len([key for key, _ in apart.calls if key is not None]) == 2  # one at a time: named when needed


def test_words_shared_with_a_function_raise_it() -> None:
    # The model leans to answering; the request names what get_weather is about ("weather", "city").
    talk = {ANSWER_TEXT: -1.0, USE_WEATHER: -2.0}
    assert choose(Scorer(talk), [WEATHER, None], "Paris?") is None
    assert choose(Scorer(talk), [WEATHER, None], "Weather in the city of Paris?") is WEATHER
    assert choose(Scorer(talk), [WEATHER, None], "The weathering of old stone?") is WEATHER  # stems meet
    # ...but words are a prior, not a verdict: a model sure enough it should answer still answers.
    assert choose(Scorer({ANSWER_TEXT: -0.1, USE_WEATHER: -12.0}), [WEATHER, None], "Weather words?") is None


def test_shared_words_help_name_the_function() -> None:
    use_alerts = option_text(opt(ALERTS))
    talk = {ANSWER_TEXT: -9.0, USE_WEATHER: -1.0, use_alerts: -1.0}
    named = {" call get_weather.": -1.0, " call get_weather_alerts.": -2.0}
    assert choose(Scorer(talk, named=named), [WEATHER, ALERTS, None]) is WEATHER
    assert choose(Scorer(talk, named=named), [WEATHER, ALERTS, None], "Any storm warnings?") is ALERTS


def test_a_second_clause_asking_for_another_function_adds_it() -> None:
    news = {"type": "function", "function": {"name": "get_news", "description": "Latest headlines on a topic"}}
    talk = {ANSWER_TEXT: -9.0, USE_WEATHER: -1.0, option_text(opt(news)): -3.0}
    named = {" call get_weather.": -1.0, " call get_news.": -3.0}
    both = decide(Scorer(talk, named=named), [WEATHER, news, None], "Weather in Paris, and the latest headlines?")
    # get_news is named (it shares two words, get_weather one), get_weather added for the first clause; the calls
    # come in the order the request asks for them.
    assert both.tool is WEATHER and both.also == [news]
    later = decide(Scorer(talk, named=named), [WEATHER, news, None], "The latest headlines, and weather in Paris?")
    assert later.tool is news and later.also == [WEATHER]
    one = decide(Scorer(talk, named=named), [WEATHER, news, None], "Weather in Paris and in Rome?")  # one thing twice
    assert one.tool is WEATHER and one.also == []
    # One clause about both: the first function covers it, nothing is added.
    assert decide(Scorer(talk, named=named), [WEATHER, news, None], "Headlines about the weather?").also == []


def test_the_engine_routes_by_the_decision(make_engine: Callable[..., Engine]) -> None:
    # Through a whole run on the scripted model: the decision's scores, then the call's arguments.
    backend = CannedBackend([{USE_WEATHER: -0.1, ANSWER_TEXT: -5.0}, '{"city": "Paris"}'])
    engine = make_engine(backend)
    thread_id, run_id, _, ended = start(engine, [WEATHER])
    assert ended.wait(10)
    run = engine.runs.get(thread_id, run_id)
    assert run.status == "requires_action"
    assert run.required_action["submit_tool_outputs"]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'  # type: ignore[index]
    assert backend.text(backend.prompts[0]).endswith("<assistant> I will")  # scored as the turn's opening
