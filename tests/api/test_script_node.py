"""A Node.js app's test driving the scripted model over HTTP: the test posts the script to /_script with fetch,
then runs the app's code with the official `openai` npm package, as an app in another language would."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import openai

from offline_assistants.engine import Engine
from offline_assistants.script import Script, ScriptedModel

APP_TEST = r"""
import OpenAI from "openai";
import assert from "node:assert/strict";

const base = process.env.OPENAI_BASE_URL.replace(/\/v1$/, "");
const headers = { "content-type": "application/json", authorization: `Bearer ${process.env.OPENAI_API_KEY}` };
await fetch(`${base}/_script`, { method: "DELETE", headers });
const posted = await fetch(`${base}/_script/steps`, { method: "POST", headers, body: JSON.stringify({ steps: [
  { kind: "call", name: "get_weather", arguments: { city: "Paris" } },
  { kind: "reply", text: "Sunny in Paris." },
] }) });
assert.equal(posted.status, 200);

// The app under test: ask, answer its function calls, return the reply.
async function weatherBot(openai, question) {
  const assistant = await openai.beta.assistants.create({ model: "gpt-4o", tools: [{ type: "function", function: {
    name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }] });
  const thread = await openai.beta.threads.create({ messages: [{ role: "user", content: question }] });
  let run = await openai.beta.threads.runs.createAndPoll(thread.id, { assistant_id: assistant.id });
  while (run.status === "requires_action") {
    const outputs = run.required_action.submit_tool_outputs.tool_calls.map((call) => ({
      tool_call_id: call.id, output: `22C in ${JSON.parse(call.function.arguments).city}` }));
    run = await openai.beta.threads.runs.submitToolOutputsAndPoll(
      run.id, { thread_id: thread.id, tool_outputs: outputs });
  }
  const messages = await openai.beta.threads.messages.list(thread.id);
  return messages.data[0].content[0].text.value;
}

assert.equal(await weatherBot(new OpenAI(), "Weather in Paris?"), "Sunny in Paris.");
const left = await (await fetch(`${base}/_script`, { headers })).json();
assert.deepEqual(left.steps, []);
assert.ok(left.prompts.some((p) => p.includes("22C in Paris")));
console.log("ok");
"""


def test_a_node_apps_test_drives_the_scripted_model(node_sdk: Path, make_engine: Callable[..., Engine],
                                                   make_client: Callable[..., openai.OpenAI]) -> None:
    engine = make_engine(ScriptedModel(Script()))
    client = make_client(engine, server_api_key="sk-node", api_key="sk-node")
    script = node_sdk / "app.test.mjs"
    script.write_text(APP_TEST)
    env = dict(os.environ, OPENAI_BASE_URL=str(client.base_url).rstrip("/"), OPENAI_API_KEY="sk-node")
    done = subprocess.run(["node", str(script)], cwd=node_sdk, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
