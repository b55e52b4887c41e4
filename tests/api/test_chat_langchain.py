"""LangChain's `ChatOpenAI` (langchain-openai) against the server's Chat Completions: a reply, `bind_tools` and
`with_structured_output`, on a canned model so each answer is exact."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from pydantic import BaseModel

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend

langchain_openai = pytest.importorskip("langchain_openai", reason='pip install -e ".[test]" installs it')


def chat_model(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI],
               replies: list[str]) -> tuple[object, CannedBackend]:
    backend = CannedBackend(replies)
    client = make_client(make_engine(backend))
    model = langchain_openai.ChatOpenAI(model="gpt-4o-mini", base_url=str(client.base_url), api_key="x",
                                        max_retries=0)
    return model, backend


def test_chat_openai_replies_calls_tools_and_fills_a_schema(make_engine: Callable[..., Engine],
                                                            make_client: Callable[..., openai.OpenAI]) -> None:
    from langchain_core.tools import tool

    model, backend = chat_model(make_engine, make_client, ["Bonjour!", '{"city": "Oslo"}', '{"name": "Ada"}'])
    assert model.invoke("Say hello in French.").content == "Bonjour!"  # type: ignore[attr-defined]

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "17 C"

    called = model.bind_tools([get_weather], tool_choice="get_weather").invoke("Weather in Oslo?")  # type: ignore[attr-defined]
    assert called.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}, "id": called.tool_calls[0]["id"],
                                  "type": "tool_call"}]

    class Person(BaseModel):
        name: str

    person = model.with_structured_output(Person).invoke("Who wrote the first program?")  # type: ignore[attr-defined]
    assert person == Person(name="Ada")
