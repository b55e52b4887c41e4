"""How a tool call is written in the assistant's turn: one syntax per chat-template family.

Every call is written the same way for every model: the engine scores whether to call (engine/decision.py), then
writes `syntax.opening(name)` and lets the model write the arguments under a grammar (llm/gbnf.py), then closes
the call. The call always parses. What differs between models is only the syntax:

* a model whose chat template defines a tool-call syntax (Hermes/Qwen `<tool_call>`, Llama 3's JSON, Mistral's
  `[TOOL_CALLS]`) is shown tools, past calls and their outputs through its own template, as it was trained, and
  its calls are written in its syntax (`native`);
* any other model gets our own: tools described in the system prompt, calls in Hermes-style tags, results in
  `<tool_response>` tags, code in a fenced block (what small instruct models know best).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

NativeFormat = Literal["hermes", "llama3", "mistral"]

CODE_OPEN = "```python\n"
CODE_CLOSE = "\n```"


@dataclass(frozen=True)
class WrittenCall:
    """A call as a template renders it back: the function's name and its JSON arguments."""

    name: str
    arguments: str  # JSON text


@dataclass(frozen=True)
class CallSyntax:
    """`head` + the name as a JSON string + `middle` + the arguments (JSON) + `closing`."""

    format: NativeFormat | None  # None: ours, for a model whose template has no call syntax
    head: str
    middle: str
    closing: str
    marker: str  # what begins a call in free text: an answer that writes it is cut there (engine/answers.py)

    @property
    def native(self) -> bool:
        """The model's own syntax: tools, calls and outputs go through its template, code as a JSON argument."""
        return self.format is not None

    def opening(self, name: str) -> str:
        return f"{self.head}{json.dumps(name)}{self.middle}"

    def call(self, name: str, arguments: str) -> str:
        return f"{self.opening(name)}{arguments}{self.closing}"

    def starts(self, name: str) -> list[str]:
        """The ways a model of this family begins a call of `name`, up to the name's last character (the closing
        quote is left out: tokenizers merge it with what follows). Hermes-template models also write the bare
        JSON object without its tags (Qwen2.5-Coder does, measured)."""
        quoted = json.dumps(name)[:-1]
        forms = [f"{self.head}{quoted}"]
        if self.format == "hermes":
            forms.append(f'{{"name": {quoted}')
        return forms


OURS = CallSyntax(None, '<tool_call>\n{"name": ', ', "arguments": ', "}\n</tool_call>", "<tool_call>")
SYNTAXES: dict[NativeFormat, CallSyntax] = {
    "hermes": CallSyntax("hermes", '<tool_call>\n{"name": ', ', "arguments": ', "}\n</tool_call>", "<tool_call>"),
    # Llama 3.1+ custom tools: a bare JSON object in the turn (its <|python_tag|> is for built-in tools).
    "llama3": CallSyntax("llama3", '{"name": ', ', "parameters": ', "}", '{"name"'),
    "mistral": CallSyntax("mistral", '[TOOL_CALLS][{"name": ', ', "arguments": ', "}]", "[TOOL_CALLS]"),
}
# Text that never belongs in an answer: a call or a tool's reply written as text (engine/answers.py cuts it).
LEAKS = ("<tool_call>", "<tool_response>", "</tool_call>", "</tool_response>", "[TOOL_CALLS]")


def syntax_for(native_format: str | None) -> CallSyntax:
    return SYNTAXES.get(native_format, OURS) if native_format else OURS  # type: ignore[call-overload]


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
