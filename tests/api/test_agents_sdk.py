"""The OpenAI Agents SDK (`openai-agents`) on the Responses face: an `Agent` run by `Runner.run` on
`OpenAIResponsesModel` against a real loopback server, with a function tool, with file search, streamed, along a
chain of responses, in a conversation, and with an `OpenAIConversationsSession` carried across turns. Canned
replies where the point is the SDK's protocol; the real model once, where the point is that a real agent loop
ends with an answer."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    FileSearchTool,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIConversationsSession,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
    function_tool,
)
from agents.items import MessageOutputItem, ToolCallItem, ToolCallOutputItem

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.llm.canned import CannedBackend

# No trace is exported: the SDK's default exporter posts to api.openai.com.
NO_TRACING = RunConfig(tracing_disabled=True)
# The canned model's function loop: decide to call, write the arguments, answer from the output.
WEATHER_LOOP = [" call get_weather.", '{"city": "Oslo"}', "It is 17 C in Oslo."]
Client = Callable[..., openai.OpenAI]


@pytest.fixture(autouse=True)
def _no_default_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Nothing may fall back to the SDK's default client (api.openai.com): every model and session is given one.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/unreachable")
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    yield


def run(client: openai.OpenAI, main: Callable[[openai.AsyncOpenAI], Coroutine[Any, Any, Any]]) -> Any:
    """`main(sdk)` on an AsyncOpenAI pointed at the server `client` talks to, closed when it is done."""
    async def inner() -> Any:
        async with openai.AsyncOpenAI(base_url=str(client.base_url), api_key="x", max_retries=0) as sdk:
            return await main(sdk)
    return asyncio.run(inner())


def weather_agent(sdk: openai.AsyncOpenAI, calls: list[str], **options: Any) -> Agent[Any]:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"17 C and clear in {city}"

    return Agent(name="Weather", instructions="Answer weather questions with the get_weather tool.",
                 tools=[get_weather], model=OpenAIResponsesModel(model="gpt-4o", openai_client=sdk), **options)


def canned_client(make_engine: Callable[..., Engine], make_client: Client, replies: list[str]
                  ) -> tuple[openai.OpenAI, CannedBackend]:
    backend = CannedBackend(replies)
    return make_client(make_engine(backend)), backend


def test_an_agent_calls_its_function_tool_and_answers(make_engine: Callable[..., Engine], make_client: Client) -> None:
    client, backend = canned_client(make_engine, make_client, WEATHER_LOOP)
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> Any:
        return await Runner.run(weather_agent(sdk, calls), "Weather in Oslo?", run_config=NO_TRACING)

    result = run(client, main)
    assert calls == ["Oslo"] and result.final_output == "It is 17 C in Oslo."
    assert [type(item) for item in result.new_items] == [ToolCallItem, ToolCallOutputItem, MessageOutputItem]
    assert "17 C and clear in Oslo" in backend.text(backend.prompts[-1])  # the SDK sent the tool's output back
    # Two responses (the call, then the answer), each with its own usage, which the SDK adds up.
    assert len(result.raw_responses) == 2
    assert all(r.usage.input_tokens > 0 and r.usage.output_tokens > 0 for r in result.raw_responses)
    assert result.context_wrapper.usage.requests == 2


def test_a_streamed_agent_run(make_engine: Callable[..., Engine], make_client: Client) -> None:
    client, _ = canned_client(make_engine, make_client, WEATHER_LOOP)
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> tuple[Any, list[Any]]:
        streamed = Runner.run_streamed(weather_agent(sdk, calls), "Weather in Oslo?", run_config=NO_TRACING)
        return streamed, [event async for event in streamed.stream_events()]

    streamed, events = run(client, main)
    assert calls == ["Oslo"] and streamed.final_output == "It is 17 C in Oslo."
    raw = [e.data for e in events if e.type == "raw_response_event"]
    assert "".join(e.delta for e in raw if e.type == "response.function_call_arguments.delta") == '{"city": "Oslo"}'
    assert "".join(e.delta for e in raw if e.type == "response.output_text.delta") == "It is 17 C in Oslo."
    assert [e.type for e in raw].count("response.completed") == 2
    assert [e.name for e in events if e.type == "run_item_stream_event"] == [
        "tool_called", "tool_output", "message_output_created"]


def test_an_agent_on_the_real_model_runs_its_tool(make_engine: Callable[..., Engine], make_client: Client,
                                                  real_backend: ModelBackend) -> None:
    client = make_client(make_engine(real_backend, max_output_tokens=48))
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> Any:
        # `required` on the first turn only: the SDK resets tool_choice once a tool ran (reset_tool_choice).
        agent = weather_agent(sdk, calls, model_settings=ModelSettings(tool_choice="required"))
        return await Runner.run(agent, "What is the weather in Oslo?", run_config=NO_TRACING, max_turns=4)

    result = run(client, main)
    assert calls and isinstance(result.final_output, str) and result.final_output.strip()
    assert [type(item) for item in result.new_items][:2] == [ToolCallItem, ToolCallOutputItem]
    assert isinstance(result.new_items[-1], MessageOutputItem)


NOTES = b"The staging server is called heliotrope and runs in the Lisbon data centre.\n"


def test_an_agent_searches_a_vector_store(make_engine: Callable[..., Engine], make_client: Client) -> None:
    client, backend = canned_client(make_engine, make_client, [
        " search the files.", '{"query": "staging server"}', "The staging server is called heliotrope."])
    store = client.vector_stores.create(name="notes")
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("notes.md", io.BytesIO(NOTES)))

    async def main(sdk: openai.AsyncOpenAI) -> Any:
        agent = Agent(name="Searcher", instructions="Answer from the notes.",
                      tools=[FileSearchTool(vector_store_ids=[store.id], include_search_results=True)],
                      model=OpenAIResponsesModel(model="gpt-4o", openai_client=sdk))
        return await Runner.run(agent, "What is the staging server called?", run_config=NO_TRACING)

    result = run(client, main)
    assert result.final_output == "The staging server is called heliotrope."  # cited, without a marker in it
    search, answer = result.new_items
    assert isinstance(search, ToolCallItem) and isinstance(answer, MessageOutputItem)
    call = search.raw_item
    assert call.type == "file_search_call" and call.status == "completed"  # type: ignore[union-attr]
    assert call.results and "heliotrope" in call.results[0].text  # type: ignore[union-attr]
    [citation] = answer.raw_item.content[0].annotations  # type: ignore[union-attr]
    assert (citation.type, citation.file_id, citation.filename) == ("file_citation", done.id, "notes.md")
    assert "heliotrope" in backend.text(backend.prompts[-1])  # the model read the passage


def test_an_agent_along_a_chain_of_responses(make_engine: Callable[..., Engine], make_client: Client) -> None:
    # auto_previous_response_id: the SDK sends only what is new (the tool's output, the next question) and
    # previous_response_id; the server holds the rest.
    client, backend = canned_client(make_engine, make_client, [
        *WEATHER_LOOP, " answer directly.", "You asked about Oslo."])
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> tuple[Any, Any]:
        agent = weather_agent(sdk, calls)
        first = await Runner.run(agent, "Weather in Oslo?", run_config=NO_TRACING, auto_previous_response_id=True)
        second = await Runner.run(agent, "What did I ask?", run_config=NO_TRACING,
                                  previous_response_id=first.last_response_id)
        return first, second

    first, second = run(client, main)
    assert first.final_output == "It is 17 C in Oslo." and second.final_output == "You asked about Oslo."
    chain = client.responses.retrieve(second.last_response_id)
    assert chain.previous_response_id == first.last_response_id
    seen = backend.text(backend.prompts[-1])
    assert seen.index("Weather in Oslo?") < seen.index("It is 17 C in Oslo.") < seen.index("What did I ask?")


def test_an_agent_in_a_conversation(make_engine: Callable[..., Engine], make_client: Client) -> None:
    # conversation_id: each response is made in the conversation, which keeps the turns.
    client, backend = canned_client(make_engine, make_client, [
        *WEATHER_LOOP, " answer directly.", "You asked about Oslo."])
    conv = client.conversations.create()
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> tuple[Any, Any]:
        agent = weather_agent(sdk, calls)
        first = await Runner.run(agent, "Weather in Oslo?", run_config=NO_TRACING, conversation_id=conv.id)
        second = await Runner.run(agent, "What did I ask?", run_config=NO_TRACING, conversation_id=conv.id)
        return first, second

    first, second = run(client, main)
    assert first.final_output == "It is 17 C in Oslo." and second.final_output == "You asked about Oslo."
    assert "It is 17 C in Oslo." in backend.text(backend.prompts[-1])
    items = client.conversations.items.list(conv.id, order="asc").data
    messages = [(i.role, i.content[0].text) for i in items if i.type == "message"]  # type: ignore[union-attr]
    assert messages == [("user", "Weather in Oslo?"), ("assistant", "It is 17 C in Oslo."),
                        ("user", "What did I ask?"), ("assistant", "You asked about Oslo.")]


def test_a_conversations_session_carries_two_turns(make_engine: Callable[..., Engine], make_client: Client) -> None:
    client, backend = canned_client(make_engine, make_client, ["Nice to meet you, Ada.", "Your name is Ada."])

    async def main(sdk: openai.AsyncOpenAI) -> tuple[Any, Any, str, list[Any]]:
        session = OpenAIConversationsSession(openai_client=sdk)
        agent = Agent(name="Friend", instructions="Be friendly.",
                      model=OpenAIResponsesModel(model="gpt-4o", openai_client=sdk))
        first = await Runner.run(agent, "I am Ada.", session=session, run_config=NO_TRACING)
        second = await Runner.run(agent, "What is my name?", session=session, run_config=NO_TRACING)
        return first, second, session.session_id, await session.get_items()

    first, second, conversation_id, kept = run(client, main)
    assert first.final_output == "Nice to meet you, Ada." and second.final_output == "Your name is Ada."
    assert conversation_id.startswith("conv_")
    seen = backend.text(backend.prompts[-1])  # the second turn's prompt holds the first turn's exchange
    assert seen.index("I am Ada.") < seen.index("Nice to meet you, Ada.") < seen.index("What is my name?")
    turns = [("user", "I am Ada."), ("assistant", "Nice to meet you, Ada."), ("user", "What is my name?"),
             ("assistant", "Your name is Ada.")]
    assert [(i["role"], i["content"][0]["text"]) for i in kept] == turns  # as the session reads them back
    items = client.conversations.items.list(conversation_id, order="asc").data
    assert [(i.role, i.content[0].text) for i in items] == turns  # type: ignore[union-attr]


def test_a_session_keeps_a_tool_turn_in_order(make_engine: Callable[..., Engine], make_client: Client) -> None:
    # The next turn's input is the session's items: the first turn's call and output sit between its question and
    # its answer, and the model reads them there (not as its answer to the new question).
    client, backend = canned_client(make_engine, make_client, [
        *WEATHER_LOOP, " answer directly.", "You asked about Oslo."])
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> tuple[Any, list[Any]]:
        session = OpenAIConversationsSession(openai_client=sdk)
        agent = weather_agent(sdk, calls)
        await Runner.run(agent, "Weather in Oslo?", session=session, run_config=NO_TRACING)
        second = await Runner.run(agent, "What did I ask?", session=session, run_config=NO_TRACING)
        return second, await session.get_items()

    second, kept = run(client, main)
    assert calls == ["Oslo"] and second.final_output == "You asked about Oslo."
    assert [i["type"] for i in kept] == ["message", "function_call", "function_call_output", "message", "message",
                                         "message"]
    seen = backend.text(backend.prompts[-1])
    assert seen.index("Weather in Oslo?") < seen.index("17 C and clear in Oslo") < seen.index(
        "It is 17 C in Oslo.") < seen.index("What did I ask?")
    assert seen.rstrip().endswith("What did I ask? </s> <assistant>")


def test_an_agent_on_chat_completions_calls_its_tool(make_engine: Callable[..., Engine], make_client: Client) -> None:
    # The same agent on OpenAIChatCompletionsModel: the SDK speaks /v1/chat/completions (its tool call, then the
    # `tool` message back).
    client, backend = canned_client(make_engine, make_client, WEATHER_LOOP)
    calls: list[str] = []

    async def main(sdk: openai.AsyncOpenAI) -> Any:
        agent = weather_agent(sdk, calls)
        agent.model = OpenAIChatCompletionsModel(model="gpt-4o", openai_client=sdk)
        return await Runner.run(agent, "Weather in Oslo?", run_config=NO_TRACING)

    result = run(client, main)
    assert calls == ["Oslo"] and result.final_output == "It is 17 C in Oslo."
    assert "17 C and clear in Oslo" in backend.text(backend.prompts[-1])
