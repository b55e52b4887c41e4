"""The Responses and Conversations APIs through the official `openai` npm package, against a real loopback server
on a canned model: a plain response read back, `responses.stream()` with its event handlers and `finalResponse()`,
the function loop along `previous_response_id`, and a conversation's items."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import openai

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend

SCRIPT = r"""
import OpenAI from "openai";
import assert from "node:assert/strict";

const client = new OpenAI({ maxRetries: 0 });
const out = {};

// A plain response, read back, its input items listed, deleted.
const plain = await client.responses.create({ model: "gpt-4o", input: "Hi", instructions: "Be brief." });
const again = await client.responses.retrieve(plain.id);
const inputs = await client.responses.inputItems.list(plain.id);
const deleted = await client.responses.delete(plain.id);
out.plain = { id: plain.id, status: plain.status, text: plain.output_text, again: again.output_text,
              usage: plain.usage.total_tokens, inputs: inputs.data.map((i) => i.content[0].text), deleted };

// A stream, through its event handlers.
const kinds = [];
let deltas = "";
const stream = client.responses.stream({ model: "gpt-4o", input: "Say something." })
  .on("event", (event) => kinds.push(event.type))
  .on("response.output_text.delta", (event) => { deltas += event.delta; });
const final = await stream.finalResponse();  // (output_text is not set on it by this SDK: read the message)
const message = final.output.find((item) => item.type === "message");
out.stream = { kinds, deltas, text: message.content[0].text, status: final.status };

// The function loop: a call (streamed), its output sent along previous_response_id, the answer.
const tools = [{ type: "function", name: "get_weather", description: "Weather in a city", strict: false,
                 parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
let argumentDeltas = "";
const asked = await client.responses.stream({ model: "gpt-4o", input: "Weather in Oslo?", tools })
  .on("response.function_call_arguments.delta", (event) => { argumentDeltas += event.delta; })
  .finalResponse();
const call = asked.output.find((item) => item.type === "function_call");
const answered = await client.responses.create({ model: "gpt-4o", tools, previous_response_id: asked.id,
  input: [{ type: "function_call_output", call_id: call.call_id, output: "17 C" }] });
out.loop = { types: asked.output.map((i) => i.type), name: call.name, arguments: JSON.parse(call.arguments),
             argumentDeltas,
             chained: answered.previous_response_id === asked.id, text: answered.output_text };

// A conversation: made with items, a response in it, its items listed in order.
const conv = await client.conversations.create({ metadata: { topic: "demo" },
  items: [{ type: "message", role: "user", content: "I am Ada." }] });
const inConv = await client.responses.create({ model: "gpt-4o", conversation: conv.id, input: "What is my name?" });
const items = await client.conversations.items.list(conv.id, { order: "asc" });
out.conversation = { id: conv.id, metadata: conv.metadata, text: inConv.output_text,
                     conversation: inConv.conversation.id,
                     items: items.data.map((i) => [i.type, i.role, i.content[0].text]) };

console.log(JSON.stringify(out));
"""


def test_the_node_sdk_on_the_responses_face(node_sdk: Path, make_engine: Callable[..., Engine],
                                            make_client: Callable[..., openai.OpenAI]) -> None:
    backend = CannedBackend(["Hello there!", "Streaming works fine.", " call get_weather.", '{"city": "Oslo"}',
                             "It is 17 C in Oslo.", "Your name is Ada."])
    client = make_client(make_engine(backend))
    script = node_sdk / "responses.mjs"
    script.write_text(SCRIPT)
    env = dict(os.environ, OPENAI_BASE_URL=str(client.base_url).rstrip("/"), OPENAI_API_KEY="sk-node")
    done = subprocess.run(["node", str(script)], cwd=node_sdk, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    plain = out["plain"]
    assert plain["status"] == "completed" and plain["text"] == plain["again"] == "Hello there!"
    assert plain["usage"] > 0 and plain["inputs"] == ["Hi"]
    assert plain["deleted"] == {"id": plain["id"], "object": "response", "deleted": True}

    stream = out["stream"]
    assert stream["deltas"] == stream["text"] == "Streaming works fine." and stream["status"] == "completed"
    kinds = stream["kinds"]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]

    loop = out["loop"]
    assert loop["types"] == ["function_call"] and loop["name"] == "get_weather"
    assert loop["arguments"] == {"city": "Oslo"} and loop["argumentDeltas"] == '{"city": "Oslo"}'
    assert loop["chained"] is True and loop["text"] == "It is 17 C in Oslo."
    assert "17 C" in backend.text(backend.prompts[-2])  # the answer was made from the call's output

    conv = out["conversation"]
    assert conv["metadata"] == {"topic": "demo"} and conv["conversation"] == conv["id"]
    assert conv["text"] == "Your name is Ada." and "I am Ada." in backend.text(backend.prompts[-1])
    assert conv["items"] == [["message", "user", "I am Ada."], ["message", "user", "What is my name?"],
                             ["message", "assistant", "Your name is Ada."]]
