"""Tool calls in text: the fences and tags a call is written in, and parsers for native formats.

Two ways a call comes out of a model:

* constrained (every model, and always for the tiny default): the engine first scores the options (engine/
  decision.py), then generates the call itself under a constraint (llm/backend.py's CodeBlock, or JsonSchema
  for the function's parameters, which llama.cpp enforces as a GBNF grammar, llm/gbnf.py). The output cannot
  be malformed, and it streams as it is produced.
* native: models whose chat template defines a tool-call syntax (Hermes/Qwen `<tool_call>`, Llama 3
  `<|python_tag|>`, Mistral `[TOOL_CALLS]`) can write it unprompted; `parse_native` reads those.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

NativeFormat = Literal["hermes", "llama3", "mistral"]
NATIVE_MARKERS: dict[str, str] = {"hermes": "<tool_call>", "llama3": "<|python_tag|>", "mistral": "[TOOL_CALLS]"}

CODE_OPEN = "```python\n"
CODE_CLOSE = "\n```"
@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: str  # JSON text


def detect_native(template: str | None) -> NativeFormat | None:
    if not template:
        return None
    if "<tool_call>" in template:
        return "hermes"
    if "<|python_tag|>" in template:
        return "llama3"
    if "[TOOL_CALLS]" in template:
        return "mistral"
    return None


_HERMES = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


def _call(obj: Any) -> ParsedCall | None:
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    args = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(name, str):
        return None
    return ParsedCall(name, args if isinstance(args, str) else json.dumps(args))


def parse_native(text: str, fmt: NativeFormat) -> list[ParsedCall]:
    """The calls in a model's output in its native syntax; [] when the output is a plain answer."""
    calls: list[ParsedCall] = []
    if fmt == "hermes":
        for match in _HERMES.finditer(text):
            try:
                parsed = _call(json.loads(match.group(1)))
            except json.JSONDecodeError:
                continue
            if parsed:
                calls.append(parsed)
    elif fmt == "llama3":
        if "<|python_tag|>" in text:
            body = text.split("<|python_tag|>", 1)[1].split("<|eom_id|>")[0].strip()
            try:
                found = [_call(json.loads(part)) for part in body.split(";") if part.strip()]
                calls += [c for c in found if c is not None]
            except json.JSONDecodeError:
                # Not JSON: Llama 3 writes raw code after the tag for its built-in interpreter.
                calls.append(ParsedCall("python", json.dumps({"code": body})))
    elif fmt == "mistral" and "[TOOL_CALLS]" in text:
        body = text.split("[TOOL_CALLS]", 1)[1].strip()
        try:
            items = json.loads(body)
        except json.JSONDecodeError:
            return []
        for item in items if isinstance(items, list) else [items]:
            parsed = _call(item)
            if parsed:
                calls.append(parsed)
    return calls
