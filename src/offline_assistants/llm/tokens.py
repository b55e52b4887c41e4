"""A model's tokenizer, apart from what generates: a GGUF's vocabulary (llm/llama.py), a remote server's endpoints
or a tokenizer.json (llm/remote_tokens.py), the scripted model's words (llm/canned.py). `TokenizedBackend`
answers every encode call from one, so the backends built on it only generate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from offline_assistants.llm.backend import ModelBackend, Role
from offline_assistants.llm.defaults import SamplingDefaults
from offline_assistants.llm.toolcalls import WrittenCall


class Tokenizer(Protocol):
    """Token ids of a model's texts, and the chat-template wrappers around its turns."""

    name: str
    tokenizer_key: str  # changes when token ids would (ModelBackend.tokenizer_key)
    native_tool_format: str | None
    sampling_defaults: SamplingDefaults
    bos_id: int | None  # the token a prompt starts with, or None when the model adds none
    # Tokenizes in this process, at no cost; False: every call is a round trip to a model server.
    local: bool

    def tokenize(self, text: str, *, special: bool = True) -> list[int]: ...

    def detokenize(self, tokens: list[int]) -> str:
        """The text of a token list, special tokens included (what a server that takes only text is sent)."""
        ...

    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]: ...

    def encode_message(self, role: Role, text: str) -> list[int]: ...

    def encode_exchange(self, calls: Sequence[WrittenCall], results: Sequence[str]) -> list[int]: ...

    def encode_text(self, text: str) -> list[int]: ...

    def generation_prefix(self) -> list[int]: ...

    def count(self, text: str) -> int: ...


class TokenizedBackend(ModelBackend):
    """A ModelBackend from a tokenizer and something that generates: the tokenizer answers every encode call
    here, the generator only ever sees whole prompts. The in-process, the process-backed, the remote and the
    canned backend (llm/canned.py) share it."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.name = tokenizer.name
        self.tokenizer_key = tokenizer.tokenizer_key
        self.native_tool_format = tokenizer.native_tool_format
        self.sampling_defaults = tokenizer.sampling_defaults

    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        return self.tokenizer.encode_system(text, tools)

    def encode_message(self, role: Role, text: str) -> list[int]:
        return self.tokenizer.encode_message(role, text)

    def encode_exchange(self, calls: Sequence[WrittenCall], results: Sequence[str]) -> list[int]:
        return self.tokenizer.encode_exchange(calls, results)

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode_text(text)

    def generation_prefix(self) -> list[int]:
        return self.tokenizer.generation_prefix()

    def count(self, text: str) -> int:
        return self.tokenizer.count(text)
