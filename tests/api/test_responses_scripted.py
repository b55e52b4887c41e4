"""An app migrated to the Responses API tests with the same plugin fixtures and script steps as one on the
Assistants API (docs/testing.md): the script drives the model, the engine under it is real."""

from __future__ import annotations

import openai

from offline_assistants.script import Script

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_scripted_reply_call_and_json(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.call("get_weather", city="Paris").reply("Sunny in Paris.").json({"city": "Paris"})
    r = assistants_client.responses.create(model="gpt-4o", input="Weather in Paris?",
                                           tools=[WEATHER])  # type: ignore[list-item]
    [call] = r.output
    assert call.type == "function_call" and call.arguments == '{"city": "Paris"}'
    done = assistants_client.responses.create(
        model="gpt-4o", previous_response_id=r.id, tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "22C and sunny"}])
    assert done.output_text == "Sunny in Paris."
    assert "22C and sunny" in assistants_script.prompts[-1]  # the function's output reached the model
    fmt = {"type": "json_schema", "name": "city", "strict": True, "schema": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
        "additionalProperties": False}}
    parsed = assistants_client.responses.create(model="gpt-4o", input="Which city?", text={"format": fmt})
    assert parsed.output_text == '{"city": "Paris"}'


def test_a_scripted_failure_fails_the_response(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.fail("rate_limit_exceeded", "Slow down.")
    r = assistants_client.responses.create(model="gpt-4o", input="Hi")
    assert r.status == "failed" and r.error is not None and r.error.code == "rate_limit_exceeded"


def test_scripted_chat_completions(assistants_client: openai.OpenAI, assistants_script: Script) -> None:
    weather = {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
    assistants_script.call("get_weather", city="Paris").reply("Sunny in Paris.")
    asked = [{"role": "user", "content": "Weather in Paris?"}]
    called = assistants_client.chat.completions.create(model="gpt-4o", messages=asked,  # type: ignore[arg-type]
                                                       tools=[weather])  # type: ignore[list-item]
    message = called.choices[0].message
    [call] = message.tool_calls or []
    answered = assistants_client.chat.completions.create(model="gpt-4o", tools=[weather], messages=[  # type: ignore[list-item]
        *asked, message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "22C"}])
    assert answered.choices[0].message.content == "Sunny in Paris."
    assert "22C" in assistants_script.prompts[-1]
