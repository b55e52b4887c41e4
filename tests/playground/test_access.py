"""The page in a real browser as people reach it: on a server with an API key (asked once, kept in the browser,
sent with every request), on a 390 px phone, from the keyboard alone, and once on the real model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from browsing import PHONE, requests_of
from playwright.sync_api import expect

from offline_assistants.api import create_app
from offline_assistants.engine import Engine
from offline_assistants.script import Script
from offline_assistants.testing import serve

KEY = "sk-playground-test"


@pytest.fixture
def keyed_site(assistants_engine: Engine) -> Iterator[str]:
    with serve(create_app(assistants_engine, api_key=KEY)) as url:
        yield url.removesuffix("/v1")


def test_the_page_asks_for_the_key_once_and_sends_it_with_every_request(
        open_page: Callable[..., Any], keyed_site: str) -> None:
    sdk = openai.OpenAI(base_url=keyed_site + "/v1", api_key=KEY, max_retries=0)
    sdk.beta.assistants.create(model="gpt-4o", name="Keyed")
    page = open_page("/#/assistants", base=keyed_site)
    dialog = page.get_by_role("dialog", name="API key")
    expect(dialog).to_be_visible()  # the page and its files loaded without the key; the API refused
    dialog.get_by_label("Key").fill("sk-wrong")
    dialog.get_by_label("Key").press("Enter")
    expect(dialog).to_contain_text("refused the key")
    dialog.get_by_label("Key").fill(KEY)
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".sidebar")).to_contain_text("Keyed")

    # Kept in this browser: a reload asks nothing.
    page.reload()
    expect(page.locator(".sidebar")).to_contain_text("Keyed")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('offline-assistants.api-key')") == KEY

    sent = [r.all_headers().get("authorization") for r in requests_of(page) if "/v1/" in r.url]
    first = sent.index(f"Bearer {KEY}")
    assert None in sent[:first] and "Bearer sk-wrong" in sent[:first]  # asked first without it, then wrongly
    assert sent[first:] == [f"Bearer {KEY}"] * len(sent[first:])  # then every request carried it
    # The page's own files loaded without it: only /v1 needs it.
    assets = [r for r in requests_of(page) if "/playground/" in r.url]
    assert assets and all(r.response().status in (200, 304) for r in assets)
    assert all("authorization" not in r.all_headers() for r in assets)


def test_a_phone_wide_page_used_from_the_keyboard(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                  assistants_script: Script) -> None:
    sdk.beta.assistants.create(model="gpt-4o", name="Pocket")
    assistants_script.reply("Hello from a *small* screen.", delay_s=0.01)
    page = open_page("/", viewport=PHONE)
    expect(page.get_by_role("button", name="New thread")).to_be_visible()
    for _ in range(12):  # Tab through the page until "New thread" has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "new-thread":
            break
    else:
        raise AssertionError("New thread cannot be reached with Tab")
    page.keyboard.press("Enter")
    composer = page.get_by_label("Message", exact=True)
    expect(composer).to_be_focused()  # a new thread puts the cursor where the user types
    expect(page.locator(".sidebar")).to_be_hidden()  # one column: the thread, with a way back
    expect(page.get_by_role("link", name="← Threads")).to_be_visible()
    page.keyboard.type("Hi there")
    page.keyboard.press("Enter")
    reply = page.locator(".run[data-status=completed] article.message")
    expect(reply.locator("em")).to_have_text("small")
    # Nothing is wider than the screen, and the composer stays in view.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = composer.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"] and box["width"] > 300
    # The run's details open from the keyboard too.
    page.locator(".run-details summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".run-details dl")).to_contain_text("completed")
    page.get_by_role("link", name="← Threads").click()
    expect(page.locator(".thread-list")).to_contain_text("Hi there")


@pytest.mark.model
@pytest.mark.assistants_model("default")
def test_a_reply_from_the_real_model(open_page: Callable[..., Any], sdk: openai.OpenAI) -> None:
    assistant = sdk.beta.assistants.create(model="gpt-4o", name="SmolLM2", instructions="Answer in one short sentence.",
                                           temperature=0)
    thread = sdk.beta.threads.create()
    page = open_page(f"/#/threads/{thread.id}")
    page.get_by_label("Assistant").select_option(assistant.id)
    page.get_by_label("Message", exact=True).fill("What is the capital of France?")
    page.get_by_label("Message", exact=True).press("Enter")
    reply = page.locator(".run[data-status=completed] article.message .message-body")
    expect(reply).not_to_be_empty(timeout=90_000)
    assert reply.inner_text().strip()
    page.locator(".run-details summary").click()
    details = page.locator(".run-details dl")
    expect(details).to_contain_text("tokens/s")
    expect(details).to_contain_text("KV cache")
    run = sdk.beta.threads.runs.list(thread.id).data[0]
    assert run.status == "completed" and run.usage is not None and run.usage.completion_tokens > 0
