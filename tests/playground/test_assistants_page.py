"""The Assistants page in a real browser: create one with the code interpreter and a function tool (its JSON
checked as it is typed), edit it, delete it after a confirmation; what the page did is read back over the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import openai
from playwright.sync_api import expect

FUNCTION = """{
  "name": "get_weather",
  "description": "The weather in a city.",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
}"""


def test_create_edit_and_delete_an_assistant(open_page: Callable[..., Any], sdk: openai.OpenAI) -> None:
    stores = [sdk.vector_stores.create(name=name).id for name in ("docs", "notes")]
    page = open_page("/#/assistants/new")
    page.get_by_label("Name").fill("Analyst")
    page.get_by_label("Instructions").fill("You analyse data.")
    page.get_by_label("Code interpreter").check()
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_label("top_p").fill("0.8")
    page.get_by_role("button", name="Add function").click()

    editor = page.locator("#a-function-0")
    check = page.locator("#a-function-0-check")
    editor.fill('{"name": "get weather",')  # as typed: broken JSON first
    expect(check).to_contain_text("Not valid JSON")
    expect(page.locator("#save-assistant")).to_be_disabled()
    editor.fill('{"name": "get weather", "parameters": {"type": "object", "required": ["city"]}}')
    expect(check).to_contain_text("name: 1-64 letters")
    expect(check).to_contain_text('"city" is not a property')
    editor.fill(FUNCTION)
    expect(check).to_have_text("✓ valid")
    expect(editor).to_have_attribute("aria-invalid", "false")

    page.get_by_label("Response format").select_option("json_schema")
    schema = page.locator("#a-schema")
    schema.fill('{"name": "answer", "schema": {"type": "objekt"}}')
    expect(page.locator("#a-schema-check")).to_contain_text('"objekt" is not a JSON Schema type')
    expect(page.locator("#save-assistant")).to_be_disabled()
    page.get_by_label("Response format").select_option("json_object")
    page.locator("#save-assistant").click()

    expect(page).to_have_url(re.compile(r"#/assistants/asst_\w+$"))
    expect(page.locator(".sidebar")).to_contain_text("Analyst")
    made = sdk.beta.assistants.list().data
    assert len(made) == 1
    assistant = made[0]
    assert assistant.name == "Analyst" and assistant.instructions == "You analyse data."
    assert [t.type for t in assistant.tools] == ["code_interpreter", "function"]
    function = assistant.tools[1].function  # type: ignore[union-attr]
    assert function.name == "get_weather" and function.parameters is not None
    assert function.parameters["required"] == ["city"]
    assert (assistant.temperature, assistant.top_p) == (0.3, 0.8)
    assert assistant.response_format is not None and assistant.response_format.type == "json_object"  # type: ignore[union-attr]

    # Edit: the form opens with what is stored, and saving changes only what was changed.
    expect(page.get_by_label("Name")).to_have_value("Analyst")
    expect(page.get_by_label("Code interpreter")).to_be_checked()
    page.get_by_label("Instructions").fill("You analyse data briefly.")
    page.get_by_label("Code interpreter").uncheck()
    page.locator("#save-assistant").click()
    expect(page.locator(".toast")).to_contain_text("Saved.")
    edited = sdk.beta.assistants.retrieve(assistant.id)
    assert edited.instructions == "You analyse data briefly."
    assert [t.type for t in edited.tools] == ["function"]

    # Out of range: the browser's own check stops it before any request.
    page.get_by_label("Temperature").fill("5")
    page.locator("#save-assistant").click()
    assert page.get_by_label("Temperature").evaluate("input => input.validity.rangeOverflow")
    page.get_by_label("Temperature").fill("0.3")
    # A refusal from the server is shown where the user is, not lost: file search takes one vector store.
    page.get_by_label("File search").check()
    page.get_by_label("docs").check()
    page.get_by_label("notes").check()
    page.locator("#save-assistant").click()
    expect(page.locator(".form-error")).to_contain_text("vector_store_ids")
    page.get_by_label("notes").uncheck()
    page.locator("#save-assistant").click()
    expect(page.locator(".toast").last).to_contain_text("Saved.")
    saved = sdk.beta.assistants.retrieve(assistant.id)
    assert saved.tool_resources is not None and saved.tool_resources.file_search is not None
    assert saved.tool_resources.file_search.vector_store_ids == [stores[0]]
    assert saved.temperature == 0.3

    # Delete asks first: cancelling keeps it, confirming deletes it.
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert [a.id for a in sdk.beta.assistants.list().data] == [assistant.id]
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".sidebar")).to_contain_text("No assistants yet.")
    assert sdk.beta.assistants.list().data == []
