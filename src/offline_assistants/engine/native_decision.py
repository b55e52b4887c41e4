"""The tool decision for a model whose chat template defines tool calls: ask the model how likely it is to start
each call, in its own syntax.

Such a model was trained to decide for itself: shown the tools through its template, it begins its turn with a
call when one fits. So instead of our "I will ..." sentences (engine/decision.py), which read as foreign text to
it, each offered tool is scored as the start of its call, `{"name": "get_weather` (llm/toolcalls.py
`CallSyntax.starts`: with and without the template's tags), right where the assistant's turn begins. The model
then writes the call under the grammar as every model does; only the question asked differs.

Measured on Qwen2.5-Coder-0.5B (log-probability of the call's start, max over the offered tools): requests a tool
fits scored -0.6 to -3.0 ("What's the temperature in Paris?" -0.6, "How is Apple's stock doing?" -2.8, the math
tutor's "solve 3x + 11 = 14" -3.0); requests none fits scored -7.1 to -19 ("Tell me a joke" -7.5, "What does
fahrenheit mean?" -10.7). CALL_THRESHOLD sits between the two; benchmarks/tool_decisions.py measures it on
held-out sets.
"""

from __future__ import annotations

import math

from offline_assistants.engine import words
from offline_assistants.engine.decision import also_asked, in_request_order
from offline_assistants.llm.backend import Decision, DecisionMaker, ModelBackend, ToolOption
from offline_assistants.llm.toolcalls import CallSyntax

CALL_THRESHOLD = -5.0  # a call the model would start with probability e^-5 (0.7%) or more is made


class NativeDecider(DecisionMaker):
    offers_used_tools = False

    def __init__(self, backend: ModelBackend, syntax: CallSyntax) -> None:
        self.backend = backend
        self.syntax = syntax

    def choose(self, system: list[int], prompt: list[int], options: list[ToolOption | None], *,
               request: str, cache_key: str | None) -> Decision:
        tools = [o for o in options if o is not None]
        forms = [self.syntax.starts(o.name) for o in tools]
        encoded = [self.backend.encode_text(f) for group in forms for f in group]
        scores = iter(self.backend.score(prompt, encoded, cache_key=cache_key))
        likelihood = [_logsumexp([next(scores) for _ in group]) for group in forms]
        best = max(range(len(tools)), key=likelihood.__getitem__)
        if None in options and likelihood[best] < CALL_THRESHOLD:
            return Decision(None, len(prompt))
        chosen = tools[best]
        if chosen.type != "function":
            return Decision(chosen, len(prompt))
        functions = [o for o in tools if o.type == "function"]
        parts = [words.stems(part) for part in words.clauses(request)]
        calls = in_request_order(parts, chosen, also_asked(parts, chosen, functions))
        return Decision(calls[0], len(prompt), also=calls[1:])


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
