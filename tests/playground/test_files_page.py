"""Files and vector stores in a real browser: a file dropped into a store is indexed to `completed` before the
user's eyes, one that cannot be read shows its last_error, and a run that searches the store shows its query,
its ranked results and a footnote that opens the cited file."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import openai
from playwright.sync_api import expect

from offline_assistants.script import Script

FRUIT = "Apples are red or green. Bananas are yellow. Cherries are small and dark red.\n"


def drop(page: Any, selector: str, name: str, data: bytes) -> None:
    """Drops a file on an element as a user's drag and drop does: a `drop` event carrying a DataTransfer."""
    transfer = page.evaluate_handle("""([name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name));
        return transfer;
    }""", [name, base64.b64encode(data).decode()])
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_a_dropped_file_is_indexed_searched_and_cited(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                      assistants_script: Script) -> None:
    page = open_page("/#/files")
    page.get_by_label("Vector store name").fill("Fruit facts")
    page.get_by_role("button", name="Create vector store").click()
    expect(page.locator(".store h3")).to_contain_text("Fruit facts")

    drop(page, "#store-drop", "fruit.txt", FRUIT.encode())
    status = page.locator(".store .file-status")
    expect(status).to_contain_text("completed")
    drop(page, "#store-drop", "blob.bin", bytes(range(256)) * 4)
    failed = page.locator(".store .file-status").filter(has_text="failed")
    expect(failed).to_contain_text("unsupported_file")  # the file's last_error, shown with it
    expect(page.locator(".store-list")).to_contain_text("1/2 indexed")
    store = sdk.vector_stores.list().data[0]
    assert store.name == "Fruit facts" and store.file_counts.completed == 1 and store.file_counts.failed == 1
    # Both uploads are listed as files too, and one can be deleted from here (after a confirmation).
    files = page.get_by_role("region", name="Files")
    expect(files.locator("tbody tr")).to_have_count(2)
    files.get_by_role("button", name="Delete blob.bin").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(files.locator("tbody tr")).to_have_count(1)
    assert [f.filename for f in sdk.files.list().data] == ["fruit.txt"]

    # A run that searches the store: the query and its ranked results inline, the answer's citation a footnote.
    assistant = sdk.beta.assistants.create(model="gpt-4o", name="Librarian", tools=[{"type": "file_search"}],
                                           tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    thread = sdk.beta.threads.create()
    assistants_script.search("apples colour").reply("Apples are red or green.")
    page.goto(page.url.split("#")[0] + f"#/threads/{thread.id}")
    page.get_by_label("Assistant").select_option(assistant.id)
    page.get_by_label("Message", exact=True).fill("What colour are apples?")
    page.get_by_role("button", name="Send").click()

    search = page.locator(".call-search")
    expect(search.locator(".query")).to_contain_text("apples colour")
    result = search.get_by_role("list", name="Ranked results").locator("li").first
    expect(result).to_contain_text("fruit.txt")
    expect(result.locator(".snippet")).to_contain_text("Apples are red")
    score = float(result.locator(".score").inner_text())
    assert 0 < score <= 1
    reply = page.locator(".run[data-status=completed] article.message")
    expect(reply.locator("sup.cite")).to_have_text("[1]")
    expect(reply.get_by_role("list", name="Sources")).to_have_text("fruit.txt")
    reply.locator("sup.cite a").click()
    viewer = page.get_by_role("dialog", name="File fruit.txt")
    expect(viewer.locator(".file-text")).to_have_text(FRUIT)
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
