"""Conversations in a real browser, on the scripted model: a conversation is started from the page and a reply
streams in through POST /v1/responses; a function call is answered through the form and the conversation reads
the same after a reload; the code interpreter's code, logs and the file it wrote, and a file search's results and
citation, show as in a thread."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from playwright.sync_api import expect

from offline_assistants.script import Script


def _send(page: Any, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def test_a_conversation_is_started_and_its_reply_streams_in(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                             assistants_script: Script) -> None:
    words = " ".join(f"word{i}" for i in range(30))
    assistants_script.reply(words, delay_s=0.05)
    sdk.beta.threads.create()  # a thread is not listed among the conversations
    page = open_page("/#/conversations")
    expect(page.get_by_role("navigation", name="Conversations")).to_contain_text("No conversations yet.")
    page.get_by_role("button", name="New conversation").click()
    expect(page.get_by_role("heading", name="Conversation conv_")).to_be_visible()
    _send(page, "Say thirty words.")

    live = page.locator(".response[data-status=in_progress] article.message")
    expect(live).to_contain_text("word3")
    early = live.inner_text()
    expect(live).to_contain_text("word12")  # more text while the response is in progress: deltas, not one answer
    assert "word29" not in early
    done = page.locator(".response[data-status=completed]")
    expect(done.locator("article.message")).to_contain_text("word29")
    conversation_id = page.url.rsplit("/", 1)[1]
    items = sdk.conversations.items.list(conversation_id, order="asc").data
    assert [(i.type, i.role) for i in items] == [("message", "user"), ("message", "assistant")]  # type: ignore[union-attr]
    response = sdk.responses.retrieve(done.get_attribute("data-response-id") or "")
    assert response.conversation is not None and response.conversation.id == conversation_id
    assert response.output_text == words and response.usage is not None
    done.get_by_text("Response details").click()
    details = done.locator(".run-details")
    expect(details).to_contain_text(response.id)
    expect(details).to_contain_text(f"{response.usage.input_tokens} input (")
    expect(details).to_contain_text(f"+ {response.usage.output_tokens} output")
    listed = page.get_by_role("navigation", name="Conversations").get_by_role("link")
    expect(listed).to_have_count(1)  # the new conversation, titled by its first message; no thread
    expect(listed).to_contain_text("Say thirty words.")


def test_a_function_call_is_answered_through_the_form_and_kept_after_a_reload(
        open_page: Callable[..., Any], sdk: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.call("get_weather", city="Paris").reply("It is 22C and sunny in Paris.")
    conversation_id = sdk.conversations.create().id
    page = open_page(f"/#/conversations/{conversation_id}")
    page.get_by_text("Model, instructions and tools").click()
    page.get_by_role("button", name="Add function").click()  # the example: get_weather(city)
    page.get_by_label("Instructions").fill("Use the tools.")
    _send(page, "What's the weather in Paris?")

    form = page.get_by_role("form", name="Function outputs")
    expect(form).to_contain_text("get_weather")
    expect(page.locator(".call-function")).to_contain_text('"city": "Paris"')
    form.get_by_label("Output of get_weather").fill('{"temperature": "22C", "sky": "sunny"}')
    form.get_by_role("button", name="Send outputs").click()
    expect(page.locator(".response[data-status=completed] article.message")).to_contain_text("22C and sunny")
    assert '"temperature": "22C"' in assistants_script.prompts[-1]  # the typed output reached the model
    assert "Use the tools." in assistants_script.prompts[-1]

    page.reload()
    timeline = page.locator(".timeline")
    expect(timeline.locator(".response")).to_have_count(2)
    expect(timeline.locator("article.message, .call-function")).to_have_text([  # in order, the call with its output
        re.compile(r"^You\s*What's the weather in Paris\?\s*$"), re.compile(r"get_weather.*Paris.*Output.*22C", re.S),
        re.compile(r"^Assistant\s*It is 22C and sunny in Paris\.\s*$")])
    expect(page.get_by_role("form", name="Function outputs")).to_have_count(0)
    first, second = (timeline.locator(".response").nth(i) for i in range(2))
    expect(first.locator(".call-function")).to_be_visible()
    expect(second.locator("article.message")).to_be_visible()
    responses = [sdk.responses.retrieve(r.get_attribute("data-response-id") or "") for r in (first, second)]
    assert [r.output[0].type for r in responses] == ["function_call", "message"]
    assert sdk.responses.input_items.list(responses[1].id).data[0].type == "function_call_output"


def test_the_code_interpreter_shows_its_code_logs_and_the_file_it_wrote(
        open_page: Callable[..., Any], sdk: openai.OpenAI, assistants_script: Script) -> None:
    assistants_script.code('open("squares.csv", "w").write("x,square\\n3,9\\n")\nprint("squares:", [9])').reply(
        "The **squares** are written.")
    conversation_id = sdk.conversations.create(items=[{"role": "user", "content": "Hello"},
                                                      {"role": "assistant", "content": "Hi! What shall I run?"}]).id
    page = open_page(f"/#/conversations/{conversation_id}")
    expect(page.locator("article.message")).to_have_count(2)  # items made elsewhere show as they are
    page.get_by_text("Model, instructions and tools").click()
    page.get_by_label("Code interpreter").check()
    _send(page, "Write the squares to a file.")

    code = page.locator(".call-code")
    expect(code.locator("pre.logs")).to_have_text("squares: [9]\n")
    expect(code.locator("code.hljs .hljs-built_in").first).to_have_text("open")  # highlighted as Python
    reply = page.locator(".response[data-status=completed] article.message")
    expect(reply.locator("strong")).to_have_text("squares")
    with page.expect_download() as downloaded:  # a container_file_citation: fetched from the container
        reply.locator("a.file-link").click()
    assert downloaded.value.suggested_filename == "squares.csv"
    assert Path(downloaded.value.path()).read_text() == "x,square\n3,9\n"
    [response_id] = [r.get_attribute("data-response-id") for r in page.locator(".response").all()]
    tools = sdk.responses.retrieve(response_id or "").tools
    assert [t.type for t in tools] == ["code_interpreter"]


def test_file_search_shows_its_results_and_the_reply_cites_the_file(
        open_page: Callable[..., Any], sdk: openai.OpenAI, assistants_script: Script) -> None:
    store = sdk.vector_stores.create(name="Fruit")
    sdk.vector_stores.files.upload_and_poll(vector_store_id=store.id, poll_interval_ms=100,
                                            file=("fruit.txt", b"Apples are red or green. Bananas are yellow."))
    assistants_script.search("apples colour").reply("Apples are red or green.")
    page = open_page(f"/#/conversations/{sdk.conversations.create().id}")
    page.get_by_text("Model, instructions and tools").click()
    page.get_by_label("File search").check()
    page.get_by_label("Fruit").check()
    _send(page, "What colour are apples?")

    search = page.locator(".call-search")
    expect(search.locator(".query")).to_contain_text("apples colour")
    result = search.get_by_role("list", name="Ranked results").locator("li").first
    expect(result).to_contain_text("fruit.txt")
    expect(result.locator(".snippet")).to_contain_text("Apples are red")
    reply = page.locator(".response[data-status=completed] article.message")
    expect(reply.locator("sup.cite")).to_have_text("[1]")  # the file_citation, where its marker was
    # The Responses face's text holds no marker (nor the space before it): the citation sits at its index.
    expect(reply.locator(".markdown p")).to_have_text("Apples are red or green.[1]")
    expect(reply.get_by_role("list", name="Sources")).to_have_text("fruit.txt")
    reply.locator("sup.cite a").click()
    expect(page.get_by_role("dialog", name="File fruit.txt")).to_contain_text("Bananas are yellow.")
    [tool] = sdk.responses.retrieve(page.locator(".response").get_attribute("data-response-id") or "").tools
    assert tool.type == "file_search" and tool.vector_store_ids == [store.id]
