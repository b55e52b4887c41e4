"""The seed's Node.js snippets (steps 1-4), verbatim but for the base URL and key, with the official `openai`
npm package against a real loopback server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import openai

from offline_assistants.engine import Engine
from offline_assistants.llm.backend import ModelBackend

SCRIPT = r"""
import OpenAI from "openai";
const openai = new OpenAI();

// Step 1
const assistant = await openai.beta.assistants.create({
  name: "Math Tutor",
  instructions: "You are a personal math tutor. Write and run code to answer math questions.",
  tools: [{ type: "code_interpreter" }],
  model: "gpt-4o"
});
// Step 2
const thread = await openai.beta.threads.create();
// Step 3
const message = await openai.beta.threads.messages.create(
  thread.id,
  {
    role: "user",
    content: "I need to solve the equation `3x + 11 = 14`. Can you help me?"
  }
);
// Step 4, with streaming
const streamed = openai.beta.threads.runs.stream(thread.id, {
    assistant_id: assistant.id
  })
    .on('textCreated', (text) => process.stdout.write('\nassistant > '))
    .on('textDelta', (textDelta, snapshot) => process.stdout.write(textDelta.value))
    .on('toolCallCreated', (toolCall) => process.stdout.write(`\nassistant > ${toolCall.type}\n\n`))
    .on('toolCallDelta', (toolCallDelta, snapshot) => {
      if (toolCallDelta.type === 'code_interpreter') {
        if (toolCallDelta.code_interpreter.input) {
          process.stdout.write(toolCallDelta.code_interpreter.input);
        }
        if (toolCallDelta.code_interpreter.outputs) {
          process.stdout.write("\noutput >\n");
          toolCallDelta.code_interpreter.outputs.forEach(output => {
            if (output.type === "logs") {
              process.stdout.write(`\n${output.logs}\n`);
            }
          });
        }
      }
    });
await streamed.finalRun();
process.stdout.write("\n--- poll ---\n");
// Step 4, without streaming
let run = await openai.beta.threads.runs.createAndPoll(
  thread.id,
  {
    assistant_id: assistant.id,
    instructions: "Please address the user as Jane Doe. The user has a premium account."
  }
);
if (run.status === 'completed') {
  const messages = await openai.beta.threads.messages.list(
    run.thread_id
  );
  for (const message of messages.data.reverse()) {
    console.log(`${message.role} > ${message.content[0].text.value}`);
  }
} else {
  console.log(run.status);
}
"""


def test_seed_node_snippets(
    node_sdk: Path, make_engine: Callable[..., Engine], real_backend: ModelBackend,
    make_client: Callable[..., openai.OpenAI],
) -> None:
    # Short answers keep this fast on a CPU; the seed's code itself is unchanged.
    engine = make_engine(real_backend, max_output_tokens=48)
    client = make_client(engine)
    script = node_sdk / "seed.mjs"
    script.write_text(SCRIPT)
    env = dict(os.environ, OPENAI_BASE_URL=str(client.base_url).rstrip("/"), OPENAI_API_KEY="dummy-key")
    done = subprocess.run(["node", str(script)], cwd=node_sdk, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    streamed, polled = done.stdout.split("\n--- poll ---\n")
    assert streamed.startswith("\nassistant > ") and len(streamed) > len("\nassistant > ")
    lines = polled.strip().splitlines()
    assert lines[0] == "user > I need to solve the equation `3x + 11 = 14`. Can you help me?"
    assert any(line.startswith("assistant > ") for line in lines[1:])
    # What streamed is what was stored.
    thread_id = engine.store.database.query_one("SELECT id FROM threads")["id"]  # type: ignore[index]
    first_reply = client.beta.threads.messages.list(thread_id=thread_id, order="asc").data[1]
    assert streamed == "\nassistant > " + first_reply.content[0].text.value  # type: ignore[union-attr]
