"""A small support bot on the Assistants API: it looks orders up with a function tool, computes with the code
interpreter, and streams its answers. It is an ordinary app: it only takes an `openai.OpenAI` client, so its
tests (test_bot.py) can hand it one onto offline-assistants' scripted model."""

from __future__ import annotations

import json
from typing import Any

from openai import AssistantEventHandler, OpenAI

ORDERS = {"A100": {"status": "shipped", "eta": "2026-12-05"}, "B200": {"status": "processing", "eta": None}}

LOOKUP = {"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order's status by its id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}


def lookup_order(order_id: str) -> dict[str, Any]:
    return ORDERS.get(order_id, {"error": f"no order {order_id}"})


def make_assistant(client: OpenAI) -> str:
    return client.beta.assistants.create(
        model="gpt-4o", name="Support", instructions="Help customers with their orders. Be brief.",
        tools=[LOOKUP, {"type": "code_interpreter"}]).id


class BotError(RuntimeError):
    pass


def ask(client: OpenAI, assistant_id: str, question: str, thread_id: str | None = None) -> tuple[str, str]:
    """The bot's answer to a question, and the thread it is in. Function calls are answered from ORDERS."""
    if thread_id is None:
        thread_id = client.beta.threads.create().id
    client.beta.threads.messages.create(thread_id, role="user", content=question)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    while run.status == "requires_action":
        outputs = []
        for call in run.required_action.submit_tool_outputs.tool_calls:  # type: ignore[union-attr]
            result = lookup_order(**json.loads(call.function.arguments))
            outputs.append({"tool_call_id": call.id, "output": json.dumps(result)})
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(thread_id=thread_id, run_id=run.id,
                                                                   tool_outputs=outputs)
    if run.status != "completed":
        message = run.last_error.message if run.last_error else run.status
        raise BotError(f"the assistant could not answer: {message}")
    reply = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    return reply.content[0].text.value, thread_id  # type: ignore[union-attr]


class _Printer(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.pieces.append(delta.value or "")


def ask_streaming(client: OpenAI, assistant_id: str, question: str) -> list[str]:
    """The answer as it streamed: the pieces a chat window would show one after another."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    handler = _Printer()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id,
                                         event_handler=handler) as stream:
        stream.until_done()
    return handler.pieces
