"""Chat Completions over the official SDK, on a canned model (exact) and on the real one (tests at the end)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import JsonSchema, ModelBackend
from offline_assistants.llm.canned import CannedBackend

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def canned(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]
           ) -> Callable[[list[str]], tuple[openai.OpenAI, CannedBackend, Engine]]:
    def factory(replies: list[str]) -> tuple[openai.OpenAI, CannedBackend, Engine]:
        backend = CannedBackend(replies)
        engine = make_engine(backend)
        return make_client(engine), backend, engine
    return factory


def stored(engine: Engine) -> tuple[int, int]:
    threads = engine.store.database.query_one("SELECT count(*) AS n FROM threads")
    responses = engine.store.database.query_one("SELECT count(*) AS n FROM responses")
    assert threads is not None and responses is not None
    return threads["n"], responses["n"]


def test_a_completion(canned: Callable[..., Any]) -> None:
    client, backend, engine = canned(["Hello there!"])
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "gpt-4o-mini"
    [choice] = r.choices
    assert choice.message.content == "Hello there!" and choice.finish_reason == "stop"
    assert r.usage is not None and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert "Be brief." in backend.text(backend.prompts[-1])
    assert stored(engine) == (0, 0)  # stateless: nothing kept


def test_tool_calls_round_trip(canned: Callable[..., Any]) -> None:
    client, backend, engine = canned(['{"city": "Oslo"}', "It is 17 C in Oslo."])
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    r = client.chat.completions.create(model="gpt-4o", messages=ask, tools=[WEATHER],  # type: ignore[list-item]
                                       tool_choice="required")
    [choice] = r.choices
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Oslo"}'  # type: ignore[union-attr]
    done = client.chat.completions.create(model="gpt-4o", tools=[WEATHER], messages=[  # type: ignore[list-item]
        *ask, choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "17 C"}])
    assert done.choices[0].message.content == "It is 17 C in Oslo."
    seen = backend.text(backend.prompts[-1])
    assert seen.index('{"city": "Oslo"}') < seen.index("17 C")
    assert stored(engine) == (0, 0)


def test_streams_with_usage(canned: Callable[..., Any]) -> None:
    client, _, _ = canned(["Streamed reply here.", '{"city": "Rome"}'])
    with client.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}],
                                        stream_options={"include_usage": True}) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Streamed reply here." and final.usage is not None
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Rome?"}],
                                                 tools=[WEATHER], tool_choice="required",  # type: ignore[list-item]
                                                 stream=True))
    args = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index, union-attr]
                   for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    assert args == '{"city": "Rome"}' and chunks[-1].choices[0].finish_reason == "tool_calls"


def test_parse_holds_the_reply_to_the_model(canned: Callable[..., Any]) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    client, backend, _ = canned(['{"name": "Oslo"}'])
    parsed = client.chat.completions.parse(model="gpt-4o", messages=[{"role": "user", "content": "A city?"}],
                                           response_format=City)
    assert parsed.choices[0].message.parsed == City(name="Oslo")
    assert isinstance(backend.samplings[-1].constraint, JsonSchema)


@pytest.mark.parametrize(("body", "param"), [
    ({"n": 200}, "n"), ({"top_logprobs": 30}, "top_logprobs"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"logit_bias": {"hello": 5}}, "logit_bias"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"), ({"bogus": 1}, "bogus"),
])
def test_what_is_not_served_is_refused_by_name(engine: Engine, make_client: Callable[..., openai.OpenAI],
                                               body: dict[str, Any], param: str) -> None:
    client = make_client(engine)
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/chat/completions", cast_to=object, body={
            "model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **body})
    assert isinstance(info.value.body, dict) and info.value.body["param"] == param


def test_stop_sequences_end_the_reply_before_them(canned: Callable[..., Any]) -> None:
    client, backend, _ = canned(["One, two. END three four."])
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Count."}],
                                       stop=["END"], seed=7, presence_penalty=0.5, frequency_penalty=0.5)
    assert r.choices[0].message.content == "One, two." and r.choices[0].finish_reason == "stop"
    sampled = backend.samplings[-1]
    assert sampled.stop == ("END",) and sampled.seed == 7 and sampled.presence_penalty == 0.5


def test_n_choices(canned: Callable[..., Any]) -> None:
    client, _, engine = canned(["One.", "Two.", "Three.", "Four."])
    r = client.chat.completions.create(model="gpt-4o", n=2, messages=[{"role": "user", "content": "Count."}])
    assert [c.index for c in r.choices] == [0, 1] and {c.message.content for c in r.choices} == {"One.", "Two."}
    assert r.usage is not None and r.usage.completion_tokens == 2
    chunks = list(client.chat.completions.create(model="gpt-4o", n=2, stream=True,
                                                 messages=[{"role": "user", "content": "Count."}]))
    texts = {i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
             for i in (0, 1)}
    assert sorted(texts.values()) == ["Four.", "Three."]
    assert stored(engine) == (0, 0)


def test_an_overflow_is_the_real_400(canned: Callable[..., Any]) -> None:
    client, _, engine = canned(["never"])
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "word " * 3000}])
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "context_length_exceeded"
    assert stored(engine)[1] == 0


def test_the_real_model_answers_and_calls(make_engine: Callable[..., Engine], real_backend: ModelBackend,
                                          make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(make_engine(real_backend, max_output_tokens=48))
    ask = [{"role": "system", "content": "You are a friendly assistant who answers in one short sentence."},
           {"role": "user", "content": "Say hello."}]
    r = client.chat.completions.create(model="gpt-4o", messages=ask, temperature=0)  # type: ignore[arg-type]
    assert r.choices[0].message.content and "<tool_call>" not in r.choices[0].message.content
    # A follow-up that repeats the conversation reads it from the model's KV cache, with no id to tell it.
    follow = client.chat.completions.create(model="gpt-4o", temperature=0, messages=[  # type: ignore[arg-type]
        *ask, {"role": "assistant", "content": r.choices[0].message.content}, {"role": "user", "content": "Again."}])
    assert follow.usage is not None and follow.usage.prompt_tokens_details is not None
    assert follow.usage.prompt_tokens_details.cached_tokens > follow.usage.prompt_tokens // 2
    called = client.chat.completions.create(model="gpt-4o", tools=[WEATHER],  # type: ignore[list-item]
                                            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                                            tool_choice="required")
    [call] = called.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and "paris" in call.function.arguments.lower()  # type: ignore[union-attr]


def test_a_seed_makes_sampling_reproducible_on_the_real_model(
        make_engine: Callable[..., Engine], real_backend: ModelBackend,
        make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(make_engine(real_backend))

    def ask(seed: int) -> str:
        r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Name a fruit."}],
                                           temperature=1.0, seed=seed, max_completion_tokens=24)
        return r.choices[0].message.content or ""

    assert ask(7) == ask(7)
    assert len({ask(s) for s in (1, 2, 3, 4)}) > 1  # at temperature 1 other seeds draw other replies


def test_logprobs_are_the_models_own(make_engine: Callable[..., Engine], real_backend: ModelBackend,
                                     make_client: Callable[..., openai.OpenAI]) -> None:
    client = make_client(make_engine(real_backend))
    r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}],
                                       temperature=0, max_completion_tokens=12, logprobs=True, top_logprobs=3)
    [choice] = r.choices
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    for t in tokens:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert [a.logprob for a in t.top_logprobs] == sorted((a.logprob for a in t.top_logprobs), reverse=True)
        assert t.top_logprobs[0].token == t.token  # greedy: the likeliest token is the one taken
    response = client.responses.create(model="gpt-4o", input="Say hello.", temperature=0, max_output_tokens=16,
                                       include=["message.output_text.logprobs"], top_logprobs=1)
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.logprobs and "".join(t.token for t in part.logprobs) == part.text  # type: ignore[union-attr]
