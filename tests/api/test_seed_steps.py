"""Steps 1-3 of the Assistants quickstart (shared/seeds/assistants-quickstart.txt), as written there.

The Python steps run verbatim on the SDK; the curl steps run through `curl` itself, with only the URL, the key
(and, in step 3, the thread id the earlier step made) changed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine

QUESTION = "I need to solve the equation `3x + 11 = 14`. Can you help me?"
INSTRUCTIONS = "You are a personal math tutor. Write and run code to answer math questions."


def test_python_steps_1_to_3(real_client: openai.OpenAI, real_engine: Engine) -> None:
    client = real_client  # the quickstart's name for it, so the steps below stay as written
    # Step 1: Create an Assistant
    assistant = client.beta.assistants.create(
        name="Math Tutor",
        instructions="You are a personal math tutor. Write and run code to answer math questions.",
        tools=[{"type": "code_interpreter"}],
        model="gpt-4o",
    )
    # Step 2: Create a Thread
    thread = client.beta.threads.create()
    # Step 3: Add a Message to the Thread
    message = client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="I need to solve the equation `3x + 11 = 14`. Can you help me?"
    )

    assert assistant.id.startswith("asst_") and assistant.object == "assistant"
    assert assistant.name == "Math Tutor" and assistant.model == "gpt-4o" and assistant.instructions == INSTRUCTIONS
    assert [t.type for t in assistant.tools] == ["code_interpreter"]
    assert thread.id.startswith("thread_") and thread.object == "thread" and thread.metadata == {}
    assert message.thread_id == thread.id and message.role == "user" and message.status == "completed"
    assert message.content[0].text.value == QUESTION  # type: ignore[union-attr]
    assert [m.id for m in client.beta.threads.messages.list(thread.id)] == [message.id]
    # The message's tokens were counted as it was stored (the truncation hot path relies on it).
    row = real_engine.store.database.query_one("SELECT n_tokens FROM messages WHERE id = ?", (message.id,))
    assert row is not None and row["n_tokens"] > 0


@pytest.fixture
def curl(real_client: openai.OpenAI) -> Callable[..., Any]:
    exe = shutil.which("curl")
    if exe is None:  # pragma: no cover
        pytest.skip("curl is not installed")
    base = str(real_client.base_url).rstrip("/")

    def run(path: str, data: str) -> Any:
        # The quickstart's command line, flag for flag; only the host and the key differ.
        cmd = [exe, "-sS", f"{base}/{path}",
               "-H", "Content-Type: application/json",
               "-H", "Authorization: Bearer sk-local",
               "-H", "OpenAI-Beta: assistants=v2",
               "-d", data]
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=30)
        return json.loads(out.stdout)

    return run


def test_curl_steps_1_to_3(curl: Callable[..., Any], real_client: openai.OpenAI) -> None:
    assistant = curl("assistants", """{
    "instructions": "You are a personal math tutor. Write and run code to answer math questions.",
    "name": "Math Tutor",
    "tools": [{"type": "code_interpreter"}],
    "model": "gpt-4o"
  }""")
    assert assistant["object"] == "assistant" and assistant["id"].startswith("asst_")
    assert assistant["name"] == "Math Tutor" and assistant["model"] == "gpt-4o"
    assert assistant["instructions"] == INSTRUCTIONS
    assert assistant["tools"] == [{"type": "code_interpreter"}]
    assert assistant["metadata"] == {} and assistant["response_format"] == "auto"

    thread = curl("threads", "")
    assert thread["object"] == "thread" and thread["id"].startswith("thread_")
    assert thread["metadata"] == {} and thread["tool_resources"] is None

    message = curl(f"threads/{thread['id']}/messages", """{
      "role": "user",
      "content": "I need to solve the equation `3x + 11 = 14`. Can you help me?"
    }""")
    assert message["object"] == "thread.message" and message["id"].startswith("msg_")
    assert message["thread_id"] == thread["id"] and message["role"] == "user"
    assert message["content"] == [{"type": "text", "text": {"value": QUESTION, "annotations": []}}]
    assert message["assistant_id"] is None and message["run_id"] is None and message["attachments"] == []

    # What curl made, the SDK reads back (and validates strictly).
    assert real_client.beta.assistants.retrieve(assistant["id"]).name == "Math Tutor"
    again = real_client.beta.threads.messages.retrieve(message["id"], thread_id=thread["id"])
    assert again.content[0].text.value == QUESTION  # type: ignore[union-attr]
