"""A GGUF's own chat template (Jinja), cut into pieces that can be tokenized once and concatenated.

Rendering [system, m] and removing the rendering of [system] gives the text the template wraps around m alone.
That holds for every template that renders messages one after another (ChatML, Llama 3, Mistral's newer ones,
Gemma...); when it does not hold we fall back to ChatML, which is what most small instruct models speak.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from jinja2.sandbox import ImmutableSandboxedEnvironment

from offline_assistants.llm.toolcalls import WrittenCall, detect_native

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Its turn markers are special tokens only to models trained on ChatML; one that is not (Gemma 3 270M, a base
# model) writes them as text to end its turn, then goes on with a made-up one ("<|im_end|>\n<|im_start|>user").
CHATML_MARKERS = ("<|im_end|>", "<|im_start|>")
_PROBE = "\x00probe\x00"
# What a model without a tool-call syntax of its own reads after a tool's result. Told nothing, a small one takes
# the result for a message to comment on ("You can use the count_unread_emails function to ...") or writes its
# call again; told what the result is for, it answers from it (benchmarks/faithfulness.py, the default model with
# the answer bias: answers that state the result 0.76 -> 0.95; 0.85 -> 0.95 on the half not used to word it).
ANSWER_CUE = "Answer the question with this result."


def _raise(message: str) -> None:
    raise ValueError(message)


class ChatTemplate:
    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        # As Hugging Face renders templates: keys in their order, no HTML escaping (Jinja's own tojson sorts keys
        # and escapes "<"), so a call rendered back reads exactly as the model wrote it.
        env.filters["tojson"] = _tojson
        self.source = source or CHATML
        self.native = source is not None  # the model's own template, not our ChatML stand-in
        self._template = env.from_string(self.source)
        self._tokens = {"bos_token": bos_token, "eos_token": eos_token}
        try:
            self._check_additive()
        except Exception:
            self.source = CHATML
            self.native = False
            self._template = env.from_string(CHATML)
        # A template that writes tool calls its own way shows their results as its model was trained to read them.
        self.tool_syntax = self.native and detect_native(self.source) is not None
        # Every message piece is "render([probe, m]) minus render([probe])": render the second half once.
        self._head = self.render([{"role": "system", "content": _PROBE}])

    def special_tokens(self) -> list[str]:
        """The BOS and EOS texts the template was given (empty ones left out)."""
        return [t for t in self._tokens.values() if t]

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False,
               tools: list[dict[str, Any]] | None = None) -> str:
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        return self._template.render(messages=messages, add_generation_prompt=add_generation_prompt, **self._tokens,
                                     **extra)

    def _check_additive(self) -> None:
        head = self.render([{"role": "system", "content": _PROBE}])
        for role in ("user", "assistant"):
            full = self.render([{"role": "system", "content": _PROBE}, {"role": role, "content": "x"}])
            if not full.startswith(head) or "x" not in full[len(head):]:
                raise ValueError("template is not additive")

    def system(self, text: str, tools: list[dict[str, Any]] | None = None) -> str:
        """The system turn; `tools` (OpenAI function specs) go to templates that render them natively."""
        return self.render([{"role": "system", "content": text}], tools=tools)

    def message(self, role: str, text: str) -> str:
        head = self._head
        if role == "tool" and not self.tool_syntax:
            text = f"{text}\n\n{ANSWER_CUE}"
        try:
            full = self.render([{"role": "system", "content": _PROBE}, {"role": role, "content": text}])
        except Exception:
            if role != "tool":
                raise
            # Templates without a tool role still need to show the model a tool's result.
            full = self.render([{"role": "system", "content": _PROBE},
                                {"role": "user", "content": f"Tool output:\n{text}"}])
        return full[len(head):]

    def exchange(self, calls: Sequence[WrittenCall], results: Sequence[str]) -> str:
        """An assistant turn that made these calls, then the tools' replies, as the template renders them."""
        head = self._head
        messages: list[dict[str, Any]] = [{"role": "system", "content": _PROBE}, {
            "role": "assistant", "content": "", "tool_calls": [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": c.name, "arguments": _arguments(c.arguments)}} for i, c in enumerate(calls)]}]
        messages += [{"role": "tool", "tool_call_id": f"call_{i}", "name": c.name, "content": r}
                     for i, (c, r) in enumerate(zip(calls, results))]
        return self.render(messages)[len(head):]

    def generation_prefix(self) -> str:
        head = self._head
        return self.render([{"role": "system", "content": _PROBE}], add_generation_prompt=True)[len(head):]


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _arguments(text: str) -> Any:
    """Templates render a call's arguments as an object (`| tojson`), as the model writes them."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class TemplateEncoding(Protocol):
    """What a tokenizer needs for the encoding methods below: its tokenize and its chat template."""

    template: ChatTemplate
    bos_id: int | None  # the token a prompt starts with, or None when the model adds none

    def tokenize(self, text: str, *, special: bool = True) -> list[int]: ...


class TemplateEncoder:
    """The ModelBackend encoding methods on top of a chat template and a tokenizer: one copy for every
    tokenizer (a GGUF's vocabulary, a remote server's, a tokenizer.json)."""

    def encode_system(self: TemplateEncoding, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        tokens = self.tokenize(self.template.system(text, tools))
        if self.bos_id is not None and (not tokens or tokens[0] != self.bos_id):
            tokens.insert(0, self.bos_id)
        return tokens

    def encode_message(self: TemplateEncoding, role: str, text: str) -> list[int]:
        return self.tokenize(self.template.message(role, text))

    def encode_exchange(self: TemplateEncoding, calls: Sequence[WrittenCall], results: Sequence[str]) -> list[int]:
        return self.tokenize(self.template.exchange(calls, results))

    def encode_text(self: TemplateEncoding, text: str) -> list[int]:
        return self.tokenize(text)

    def generation_prefix(self: TemplateEncoding) -> list[int]:
        return self.tokenize(self.template.generation_prefix())

    def count(self: TemplateEncoding, text: str) -> int:
        return len(self.tokenize(text, special=False))
