"""What a tool decision costs a request that needs no tool, in tokens of generation: the seed's math tutor has the
code interpreter on, so every turn of it pays the decision before its first token.

The server as `offline-assistants serve` runs it (the embedded model in its model process, default settings),
uvicorn on loopback, the official `openai` SDK. One assistant offers the code interpreter and one function
(get_weather); each request (chit-chat, facts, writing: no tool fits) goes to a new thread, streamed, at
temperature 0, twice, in alternating order:

  auto   tool_choice "auto": the model first scores answering against running code and calling the function
         (engine/decision.py), then writes
  none   tool_choice "none": the baseline, the same assistant and request with no decision

Per request: the time to the first text delta of each, the generation tok/s of the auto run, and the decision's
cost in tokens: (first token auto - first token none) x that tok/s. Printed: the median over requests, against
issue 26's target (<= 30 tokens; 65 measured before prefix reuse, on main at 12970d3). Every auto run must answer
in text (a run that called a tool is reported, and not counted).

    python benchmarks/decision_cost.py            # 10 requests: about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUESTS = ["Tell me a joke.", "What is the capital of France?", "Write a haiku about rain.", "Say hello.",
            "Who wrote Romeo and Juliet?", "Give me a tip for sleeping well.", "What colour is the sky?",
            "Name three fruits.", "How are you today?", "Describe a cat in one sentence."]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass(frozen=True)
class Turn:
    first_s: float  # POST -> first text delta
    tok_s: float | None  # (tokens - 1) / first delta -> last
    status: str


def turn(client: Any, assistant_id: str, ask: str, max_tokens: int, tool_choice: str) -> Turn:
    """A new thread with the request, its run streamed at temperature 0, timed from before the POST."""
    thread = client.beta.threads.create(messages=[{"role": "user", "content": ask}])
    t0 = time.perf_counter()
    first = last = 0.0
    status, tokens = "none", 0
    for event in client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id, stream=True,
                                                 max_completion_tokens=max_tokens, temperature=0,
                                                 tool_choice=tool_choice):
        if event.event == "thread.message.delta":
            last = time.perf_counter()
            first = first or last
        elif event.event in ("thread.run.completed", "thread.run.incomplete", "thread.run.failed",
                             "thread.run.requires_action"):
            status = event.data.status
            tokens = event.data.usage.completion_tokens if event.data.usage else 0
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else None
    return Turn(first - t0 if first else 0.0, rate, status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--requests", type=int, default=len(REQUESTS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    import openai

    from offline_assistants.api import create_app
    from offline_assistants.testing import load_default_backend, make_engine, serve

    backend = load_default_backend(4096)
    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-decision-"))
    engine = make_engine(data_dir, backend)
    costs, firsts, bases, called = [], [], [], 0
    try:
        with serve(create_app(engine)) as url:
            client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
            tutor = client.beta.assistants.create(model="local", instructions="You are a helpful assistant.",
                                                  tools=[{"type": "code_interpreter"}, WEATHER])
            # One untimed turn of each kind first: the first thread of an assistant evaluates its instructions
            # and tool descriptions cold, as a server just started does once.
            for choice in ("auto", "none"):
                turn(client, tutor.id, "Hi.", 4, choice)
            for i, ask in enumerate(REQUESTS[: args.requests]):
                order = ("auto", "none") if i % 2 == 0 else ("none", "auto")
                got = {choice: turn(client, tutor.id, ask, args.max_tokens, choice) for choice in order}
                auto, none = got["auto"], got["none"]
                if auto.tok_s is None or not auto.first_s or not none.first_s:
                    called += 1
                    print(f"  {ask!r}: auto did not answer in text ({auto.status})", file=sys.stderr)
                    continue
                cost = (auto.first_s - none.first_s) * auto.tok_s
                costs.append(cost)
                firsts.append(auto.first_s)
                bases.append(none.first_s)
                print(f"  {ask!r}: first token {auto.first_s * 1e3:.0f} ms auto, {none.first_s * 1e3:.0f} ms none; "
                      f"{auto.tok_s:.1f} tok/s; decision {cost:.1f} tokens", file=sys.stderr, flush=True)
    finally:
        engine.close()
        backend.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"RESULT decision_cost tokens={statistics.median(costs):.1f} first_auto_ms="
          f"{statistics.median(firsts) * 1e3:.0f} first_none_ms={statistics.median(bases) * 1e3:.0f} "
          f"requests={len(costs)} called={called} target<=30")


if __name__ == "__main__":
    main()
