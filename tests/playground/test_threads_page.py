"""Threads in a real browser, on the scripted model: a reply streams in token by token, a code step shows its
highlighted input, its output and its plot, a requires_action is answered through the form, a long run is
cancelled, and the run's details say what the model saw. The README's screenshot is taken here
(OA_UPDATE_README_SHOT=1 writes it to docs/playground.png)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from playwright.sync_api import expect

from offline_assistants.script import Script

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "playground.png"
# The README's picture is rewritten only when asked (OA_UPDATE_README_SHOT=1): a test run leaves the tree as it was.
UPDATE_README_SHOT = os.environ.get("OA_UPDATE_README_SHOT") == "1"

PLOT = """import matplotlib.pyplot as plt
xs = [int(x) for x in open("numbers.csv").read().split()[1:]]
plt.figure(figsize=(6, 2)); plt.plot(xs, [x * x for x in xs], marker="o"); plt.title("Squares"); plt.show()
open("squares.csv", "w").write("x,square\\n" + "".join(f"{x},{x * x}\\n" for x in xs))
print("squares:", [x * x for x in xs])"""

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _thread(sdk: openai.OpenAI, **assistant: Any) -> tuple[str, str]:
    made = sdk.beta.assistants.create(model="gpt-4o", **{"name": "Helper", **assistant})
    return made.id, sdk.beta.threads.create().id


def _send(page: Any, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def test_a_reply_streams_in_before_the_run_completes(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                     assistants_script: Script) -> None:
    words = " ".join(f"word{i}" for i in range(30))
    assistants_script.reply(words, delay_s=0.05)
    _, thread_id = _thread(sdk)
    page = open_page(f"/#/threads/{thread_id}")
    _send(page, "Say thirty words.")

    live = page.locator(".run[data-status=in_progress] article.message")
    expect(live).to_contain_text("word3")
    early = live.inner_text()
    expect(live).to_contain_text("word12")  # more text, and the run still in progress: deltas, not one answer
    assert "word29" not in early
    run = page.locator(".run[data-status=completed]")
    expect(run.locator("article.message")).to_contain_text("word29")
    run.get_by_text("Run details").click()
    details = run.locator(".run-details")
    expect(details).to_contain_text("First token")
    expect(details).to_contain_text("tokens/s")
    expect(details).to_contain_text("1 message kept, 0 older cut")
    assert sdk.beta.threads.runs.list(thread_id).data[0].status == "completed"


def test_a_code_step_shows_its_code_output_plot_and_files(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                          assistants_script: Script, screenshots: Path) -> None:
    assistants_script.code(PLOT).reply(
        "The squares grow fast: **1, 4, 9, 16, 25**, as\n```python\n[x * x for x in range(1, 6)]\n```\nshows.",
        delay_s=0.01)
    _, thread_id = _thread(sdk, name="Data helper", tools=[{"type": "code_interpreter"}])
    page = open_page(f"/#/threads/{thread_id}")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Attach files").click()
    chooser.value.set_files([{"name": "numbers.csv", "mimeType": "text/csv", "buffer": b"x\n1\n2\n3\n4\n5\n"}])
    expect(page.get_by_label("Tool for numbers.csv")).to_have_value("code_interpreter")
    _send(page, "Plot the squares of these numbers.")

    asked = page.locator("article.role-user")
    expect(asked.get_by_role("list", name="Attachments")).to_have_text("numbers.csv · code interpreter")
    code = page.locator(".call-code")
    expect(code.locator("pre.logs")).to_contain_text("squares: [1, 4, 9, 16, 25]")  # it read the attachment
    expect(code.locator("code.hljs .hljs-keyword").first).to_have_text("import")  # highlighted as Python
    image = code.locator("img.output-image")
    expect(image).to_have_attribute("src", re.compile(r"^blob:"))  # fetched with the key, not linked
    assert image.evaluate("img => img.decode().then(() => img.naturalWidth)") > 100  # a real picture
    reply = page.locator(".run[data-status=completed] article.message")
    expect(reply.locator("strong")).to_have_text("1, 4, 9, 16, 25")  # Markdown, rendered
    expect(reply.locator("pre code.hljs.language-python")).to_be_visible()
    with page.expect_download() as downloaded:  # the file the code wrote: a file_path link
        reply.locator("a.file-link").click()
    assert downloaded.value.suggested_filename == "squares.csv"
    assert Path(downloaded.value.path()).read_text() == "x,square\n1,1\n2,4\n3,9\n4,16\n5,25\n"
    message = sdk.beta.threads.messages.list(thread_id, order="asc").data[0]
    assert message.attachments and message.attachments[0].tools[0].type == "code_interpreter"  # type: ignore[index,union-attr]

    page.locator(".timeline").evaluate("t => { t.scrollTop = t.scrollHeight; }")
    shot = README_SHOT if UPDATE_README_SHOT else screenshots / "readme-playground.png"
    page.screenshot(path=str(shot))  # the README's picture (1280x800)
    page.locator(".run-details summary").click()
    expect(page.locator(".run-details")).to_contain_text("Model calls")


def test_a_failed_run_shows_its_last_error(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                           assistants_script: Script) -> None:
    assistants_script.fail("rate_limit_exceeded", "The scripted model ran out of quota.")
    _, thread_id = _thread(sdk)
    page = open_page(f"/#/threads/{thread_id}")
    _send(page, "Hello?")
    failed = page.locator(".run[data-status=failed]")
    expect(failed.get_by_role("alert")).to_have_text("rate_limit_exceeded: The scripted model ran out of quota.")
    failed.get_by_text("Run details").click()
    expect(failed.locator(".run-details")).to_contain_text("Last error")


def test_markdown_from_the_model_is_rendered_safely(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                    assistants_script: Script) -> None:
    assistants_script.reply('Hi <img src="x" onerror="window.pwned = 1"> <script>window.pwned = 2</script> '
                            '[a link](javascript:window.pwned=3) <a href="#" onclick="window.pwned = 4">b</a> '
                            '<iframe src="/"></iframe> **bold**\n\n| x | x² |\n|---|---|\n| 5 | 25 |')
    _, thread_id = _thread(sdk)
    page = open_page(f"/#/threads/{thread_id}")
    _send(page, "Try something.")
    reply = page.locator(".run[data-status=completed] article.message .markdown")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("table td").last).to_have_text("25")  # GitHub-flavoured tables
    expect(reply.locator("script, iframe, [onerror], [onclick]")).to_have_count(0)
    for link in reply.locator("a").all():
        assert not (link.get_attribute("href") or "").startswith("javascript:")
        link.click()
    assert page.evaluate("window.pwned") is None


def test_the_run_details_show_which_messages_the_model_saw(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                           assistants_script: Script) -> None:
    assistants_script.reply("Noted.")
    assistant_id, _ = _thread(sdk)
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": f"note {i}"} for i in range(6)])
    sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id,
                                          truncation_strategy={"type": "last_messages", "last_messages": 2})
    page = open_page(f"/#/threads/{thread.id}")
    page.get_by_text("Run details").click()
    expect(page.locator(".run-details")).to_contain_text("2 messages kept, 4 older cut")
    page.get_by_role("button", name="Show in thread").click()
    expect(page.locator("article.window-cut")).to_have_count(4)
    expect(page.locator("article.window-kept")).to_have_text([re.compile("note 4"), re.compile("note 5")])
    page.get_by_role("button", name="Show in thread").click()
    expect(page.locator("article.window-cut, article.window-kept")).to_have_count(0)


def test_requires_action_is_answered_through_the_form(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                                      assistants_script: Script) -> None:
    assistants_script.call("get_weather", city="Paris").reply("It is 22C and sunny in Paris.")
    _, thread_id = _thread(sdk, tools=[WEATHER])
    page = open_page(f"/#/threads/{thread_id}")
    _send(page, "What's the weather in Paris?")

    form = page.get_by_role("form", name="Tool outputs")
    expect(form).to_contain_text("get_weather")
    expect(page.locator(".run")).to_have_attribute("data-status", "requires_action")
    expect(page.locator(".call-function")).to_contain_text('"city": "Paris"')
    form.get_by_label("Output of get_weather").fill('{"temperature": "22C", "sky": "sunny"}')
    form.get_by_role("button", name="Submit outputs").click()

    done = page.locator(".run[data-status=completed]")
    expect(done.locator("article.message")).to_contain_text("22C and sunny")
    expect(done.locator(".function-output")).to_contain_text('"temperature": "22C"')
    assert '"temperature": "22C"' in assistants_script.prompts[-1]  # the typed output reached the model
    run = sdk.beta.threads.runs.list(thread_id).data[0]
    assert run.status == "completed"


def test_a_long_run_is_cancelled(open_page: Callable[..., Any], sdk: openai.OpenAI,
                                 assistants_script: Script) -> None:
    assistants_script.reply(" ".join(f"w{i}" for i in range(400)), delay_s=0.05)
    _, thread_id = _thread(sdk)
    page = open_page(f"/#/threads/{thread_id}")
    _send(page, "Write a lot.")
    expect(page.locator(".run[data-status=in_progress] article.message")).to_contain_text("w5")
    page.get_by_role("button", name="Cancel run").click()

    cancelled = page.locator(".run[data-status=cancelled]")
    expect(cancelled).to_be_visible()
    expect(cancelled.locator("article.message .incomplete")).to_contain_text("run_cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    run = sdk.beta.threads.runs.list(thread_id).data[0]
    assert run.status == "cancelled"
    message = sdk.beta.threads.messages.list(thread_id).data[0]
    assert message.status == "incomplete" and "w399" not in message.content[0].text.value  # type: ignore[union-attr]
    assistants_script.clear()  # the rest of the long reply was never needed
