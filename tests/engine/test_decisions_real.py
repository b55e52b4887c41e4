"""The tool decision on the real embedded model, in the style of the held-out set (benchmarks/tool_data.py, BFCL):
other authors' functions, and requests that share a word with a function they do not need. Our own phrasings,
not BFCL's items."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest


def function(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {k: {"type": t} for k, t in properties.items()},
        "required": list(properties)}}}


BMI = function("body_mass_index", "Work out a person's body mass index from their weight and height.",
               weight_kg="number", height_m="number")
STOCK = function("get_stock_price", "Get the latest trading price of a company's stock by its ticker symbol.",
                 ticker="string")
RECIPES = function("find_recipes", "Find cooking recipes that use the given ingredients.", ingredients="string")


def decided(client: openai.OpenAI, tool: dict[str, Any], request: str) -> str:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[tool])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": request}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   max_completion_tokens=24)
    return "call" if run.status == "requires_action" else "answer"


@pytest.mark.parametrize(("tool", "request_text", "move"), [
    (STOCK, "What is the stock price of NVDA right now?", "call"),
    (RECIPES, "Find me recipes that use chicken and rice.", "call"),
    # Each shares a word with the function offered, and needs something else.
    (BMI, "What is the area of a wall 4 meters wide and 3 meters in height?", "answer"),
    pytest.param(STOCK, "Who founded the company that makes the iPhone?", "answer", marks=pytest.mark.xfail(
        strict=True, reason="the word it shares with the description ('company') still outweighs the model: the "
                            "held-out abstain target is missed (engine/decision.py, benchmarks/README.md)")),
])
def test_a_function_is_called_when_the_request_is_for_it(real_inproc_client: openai.OpenAI, tool: dict[str, Any],
                                                         request_text: str, move: str) -> None:
    assert decided(real_inproc_client, tool, request_text) == move


def test_a_function_without_parameters_is_called_with_an_empty_object(real_inproc_client: openai.OpenAI) -> None:
    # The API's rule: omitting `parameters` is an empty parameter list, so the arguments are `{}`, never a
    # JSON object the model made up.
    clock = {"type": "function", "function": {"name": "get_current_time", "description": "Get the time now."}}
    assistant = real_inproc_client.beta.assistants.create(model="gpt-4o", tools=[clock])  # type: ignore[list-item]
    thread = real_inproc_client.beta.threads.create(messages=[{"role": "user", "content": "What time is it?"}])
    run = real_inproc_client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=24,
        tool_choice={"type": "function", "function": {"name": "get_current_time"}})
    assert run.status == "requires_action" and run.required_action is not None
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert json.loads(call.function.arguments) == {}
