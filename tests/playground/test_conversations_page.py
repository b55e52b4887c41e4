"""Conversations in a real browser, on the scripted model: a conversation is started from the page and a reply
streams in through POST /v1/responses; a function call is answered through the form and the conversation reads
the same after a reload; the code interpreter's code, logs and the file it wrote show as in a thread."""

from __future__ import annotations

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
