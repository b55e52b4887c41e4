"""Chat Completions and embeddings through the official `openai` npm package, against a real loopback server on a
canned model: a completion, a stream with usage, a tool call answered with a `tool` message, embeddings."""

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

const client = new OpenAI({ maxRetries: 0 });
const out = {};
const plain = await client.chat.completions.create({ model: "gpt-4o",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }] });
out.plain = { text: plain.choices[0].message.content, finish: plain.choices[0].finish_reason,
              usage: plain.usage.total_tokens };

let streamed = "";
let usage = null;
const stream = await client.chat.completions.create({ model: "gpt-4o", stream: true,
  stream_options: { include_usage: true }, messages: [{ role: "user", content: "Say something." }] });
for await (const chunk of stream) {
  if (chunk.choices.length) streamed += chunk.choices[0].delta.content ?? "";
  if (chunk.usage) usage = chunk.usage.total_tokens;
}
out.stream = { streamed, usage };

const tools = [{ type: "function", function: { name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
const asked = [{ role: "user", content: "Weather in Oslo?" }];
const called = await client.chat.completions.create({ model: "gpt-4o", messages: asked, tools,
                                                      tool_choice: "required" });
const message = called.choices[0].message;
const call = message.tool_calls[0];
const answered = await client.chat.completions.create({ model: "gpt-4o", tools,
  messages: [...asked, message, { role: "tool", tool_call_id: call.id, content: "17 C" }] });
out.loop = { finish: called.choices[0].finish_reason, name: call.function.name,
             arguments: JSON.parse(call.function.arguments), text: answered.choices[0].message.content };
const embedded = await client.embeddings.create({ model: "text-embedding-3-small", input: ["cat", "kitten"] });
const shortened = await client.embeddings.create({ model: "text-embedding-3-small", input: "cat", dimensions: 8,
                                                   encoding_format: "float" });
out.embeddings = { count: embedded.data.length, size: embedded.data[0].embedding.length,
                   model: embedded.model, short: shortened.data[0].embedding.length,
                   tokens: embedded.usage.prompt_tokens };
console.log(JSON.stringify(out));
"""


def test_the_node_sdk_on_chat_completions(node_sdk: Path, make_engine: Callable[..., Engine],
                                          make_client: Callable[..., openai.OpenAI]) -> None:
    backend = CannedBackend(["Hello there!", "Streaming works fine.", '{"city": "Oslo"}', "It is 17 C in Oslo."])
    client = make_client(make_engine(backend))
    script = node_sdk / "chat.mjs"
    script.write_text(SCRIPT)
    env = dict(os.environ, OPENAI_BASE_URL=str(client.base_url).rstrip("/"), OPENAI_API_KEY="sk-node")
    done = subprocess.run(["node", str(script)], cwd=node_sdk, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["plain"] == {"text": "Hello there!", "finish": "stop", "usage": out["plain"]["usage"]}
    assert out["plain"]["usage"] > 0
    assert out["stream"]["streamed"] == "Streaming works fine." and out["stream"]["usage"] > 0
    assert out["loop"] == {"finish": "tool_calls", "name": "get_weather", "arguments": {"city": "Oslo"},
                           "text": "It is 17 C in Oslo."}
    # Embeddings too (the SDK asks for base64 and decodes it itself).
    assert out["embeddings"] == {"count": 2, "size": 256, "model": "text-embedding-3-small", "short": 8,
                                 "tokens": out["embeddings"]["tokens"]} and out["embeddings"]["tokens"] > 0
