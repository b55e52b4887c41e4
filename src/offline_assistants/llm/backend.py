"""The interface between the engine and a language model.

The engine only ever sees token ids and text pieces: it asks the backend to encode a system prompt or one chat
message (with the model's own chat-template wrapper) once, keeps those tokens, and later hands back a whole prompt
as a token list. A remote or scripted backend fits behind the same few methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from offline_assistants.llm.defaults import SamplingDefaults

Role = Literal["system", "user", "assistant", "tool"]


# What the output must be, said as types: each backend enforces them its own way (llama.cpp compiles them to a
# GBNF grammar, llm/gbnf.py; a remote server would pass a JSON schema or a choice on). The engine never sees GBNF.
@dataclass(frozen=True)
class Choice:
    """Exactly one of these strings."""

    options: tuple[str, ...]


@dataclass(frozen=True)
class JsonSchema:
    """JSON valid against this schema (None, or an object schema without properties: any JSON object)."""

    schema: dict[str, Any] | None


@dataclass(frozen=True)
class AnyJson:
    """Any JSON object (JSON mode)."""


@dataclass(frozen=True)
class CodeBlock:
    """Source lines without backticks up to a closing fence ("\\n```"), which ends the output: the body of a
    code block the prompt has opened."""


Constraint = Choice | JsonSchema | AnyJson | CodeBlock


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    repeat_penalty: float = 1.0  # llama.cpp's repetition penalty; not applied under a constraint (JSON repeats quotes)
    constraint: Constraint | None = None  # when set, output is held to it
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Piece:
    """One generated token and the text it completes (may be "" while a multi-byte character is split)."""

    token: int
    text: str


@dataclass(frozen=True)
class Finish:
    reason: Literal["stop", "length", "cancelled"]
    prompt_tokens: int  # tokens evaluated for this call, cached prefix excluded
    completion_tokens: int
    kv_switch_ms: float = 0.0  # time spent parking / restoring conversation states first (for benchmarks)
    # The generated token ids, from a backend whose pieces could only carry stand-in ids (a server that streams
    # text, llm/remote.py): they replace the pieces' ids. None: the pieces' ids are the real ones.
    tokens: tuple[int, ...] | None = None


class ModelError(RuntimeError):
    """The model could not serve a call (bad file, context overflow, decode failure)."""


def describe_error(exc: BaseException) -> str:
    """The text a run's last_error shows: a ModelError's own words, anything else with its type named."""
    return str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"


@runtime_checkable
class ModelBackend(Protocol):
    name: str
    n_ctx: int
    tokenizer_key: str  # changes when token ids would: cached message tokens are only valid for the same key
    native_tool_format: str | None  # "hermes", "llama3", "mistral" when the chat template defines tool calls
    sampling_defaults: SamplingDefaults  # what to sample with when the client sets nothing (llm/defaults.py)
    # A backend that serves several generations at once (a remote server that batches) also sets
    # `parallel = True`: the engine then runs up to Settings.max_concurrent_runs runs at once (engine/worker.py).

    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        """The system turn; `tools` are OpenAI function specs, rendered by templates that know them."""
        ...

    def encode_message(self, role: Role, text: str) -> list[int]: ...

    def generation_prefix(self) -> list[int]: ...

    def encode_text(self, text: str) -> list[int]:
        """Raw text inside the assistant's turn (a forced lead such as a code fence), no template wrapper."""
        ...

    def count(self, text: str) -> int: ...

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        """Each option's log-probability as the continuation of `prompt` (for decisions among a closed set)."""
        ...

    def generate(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        cache_key: str | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[Piece | Finish]:
        """Stream pieces, then exactly one Finish. `cache_key` names the conversation, for KV reuse."""
        ...
