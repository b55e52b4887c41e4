"""The interface between the engine and a language model.

The engine only ever sees token ids and text pieces: it asks the backend to encode a system prompt or one chat
message (with the model's own chat-template wrapper) once, keeps those tokens, and later hands back a whole prompt
as a token list. A remote or scripted backend fits behind the same few methods.

`ModelBackend` declares everything the engine asks of a model, with defaults for what most models leave alone
(a decider of their own, parallel generation, an engine to know about), the way llm's `Model` declares
`can_stream`: the engine reads attributes, it never probes for them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from offline_assistants.llm.defaults import API_DEFAULTS, SamplingDefaults
from offline_assistants.llm.toolcalls import WrittenCall

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
class AnswerBias:
    """What steers an answer written after tool calls (llm/answer_bias.py), in backends that declare
    `steers_answers`: the tool outputs whose figures it copies whole, and the openings of the run's tool calls,
    which it may not begin with."""

    copy_from: tuple[str, ...] = ()
    never_open: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    repeat_penalty: float = 1.0  # llama.cpp's repetition penalty; not applied under a constraint (JSON repeats quotes)
    constraint: Constraint | None = None  # when set, output is held to it
    stop: tuple[str, ...] = ()
    answer: AnswerBias | None = None  # applied by backends that declare steers_answers
    # Chat Completions' own: a seed of the request's (None: the server's), OpenAI's penalties, a bias per token id.
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    logprobs: int | None = None  # each token's log-probability, and this many likeliest alternatives (0-20)


@dataclass(frozen=True)
class TokenChoice:
    """A token as log-probabilities show it: its bytes (a piece of a character, perhaps) and its log-probability."""

    token: bytes
    logprob: float


@dataclass(frozen=True)
class Piece:
    """One generated token and the text it completes (may be "" while a multi-byte character is split)."""

    token: int
    text: str
    # With Sampling.logprobs: the token as the model weighed it (its logits before any bias or grammar), and the
    # likeliest tokens in its place.
    chosen: TokenChoice | None = None
    top: tuple[TokenChoice, ...] = ()


@dataclass(frozen=True)
class Finish:
    reason: Literal["stop", "length", "cancelled"]
    prompt_tokens: int  # tokens evaluated for this call, cached prefix excluded
    completion_tokens: int
    kv_switch_ms: float = 0.0  # time spent parking / restoring conversation states first (for benchmarks)
    # Speculation (llm/lookup.py), for benchmarks: tokens guessed from the context, and how many the model kept.
    drafted: int = 0
    accepted: int = 0
    # The generated token ids, from a backend whose pieces could only carry stand-in ids (a server that streams
    # text, llm/remote.py): they replace the pieces' ids. None: the pieces' ids are the real ones.
    tokens: tuple[int, ...] | None = None


class ModelError(RuntimeError):
    """The model could not serve a call (bad file, context overflow, decode failure)."""

    # The API code a failed run's last_error names (rate_limit_exceeded, a script's chosen one); None: server_error.
    code: str | None = None


def describe_error(exc: BaseException) -> str:
    """The text a run's last_error shows: a ModelError's own words, anything else with its type named."""
    return str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"


# What generate() returns: pieces, then exactly one Finish. A generator, so that a caller who stops reading
# closes it (a server's stream, a request in the model process, is then ended too).
Stream = Generator[Piece | Finish, None, None]


@dataclass(frozen=True)
class ToolOption:
    """One tool a round may call, as the decision sees it. The tool's plug-in words it (tools/base.py `Tool.option`):
    the engine's Decider scores `sentence`, adds `bias` and the words the request shares with `about`."""

    key: str  # which offered tool: "function:get_weather", "code_interpreter", "file_search"
    type: str  # the API's tool type
    name: str  # what a call is named: the function's name; the tool's type otherwise
    sentence: str  # what choosing it says, continuing "I will": " run Python code to compute it."
    bias: float  # added to its calibrated score: fitted per kind of tool (engine/decision.py)
    about: dict[str, Any] | None = None  # a function spec the word prior reads (name, description, parameters)
    evidence: int = 0  # request words found elsewhere for it (file search: how many the run's stores hold)


@dataclass(frozen=True)
class Decision:
    """A round's move in a run that may call tools (declared here: a backend may bring its own DecisionMaker)."""

    tool: ToolOption | None  # None: answer in text
    read: int  # prompt tokens the scoring read
    also: list[ToolOption] = field(default_factory=list)  # further functions to call alongside `tool`
    exact: bool = False  # the calls are exactly these (a script's): no second call is inferred from the request


class DecisionMaker(Protocol):
    """What chooses a round's move: the engine's Decider (engine/decision.py), which scores options with the
    model, or a backend's own (a script's, script.py)."""

    # Whether a tool the run already used is offered again: a script may call one twice; real models are
    # stopped from looping on one.
    offers_used_tools: bool

    def choose(self, system: list[int], prompt: list[int], options: list[ToolOption | None], *,
               request: str, cache_key: str | None) -> Decision: ...


class ModelBackend(ABC):
    """What the engine needs of a model. Subclasses set the four attributes without a default and implement
    the abstract methods; the rest have defaults that suit most models."""

    name: str
    n_ctx: int
    tokenizer_key: str  # changes when token ids would: cached message tokens are only valid for the same key
    native_tool_format: str | None  # "hermes", "llama3", "mistral" when the chat template defines tool calls
    # What to sample with when the client sets nothing (llm/defaults.py).
    sampling_defaults: SamplingDefaults = API_DEFAULTS
    # Serves several generations at once (a model process that decodes a batch, a remote server that batches):
    # the engine then runs up to Settings.max_concurrent_runs runs at once (engine/worker.py).
    parallel: bool = False
    # Applies Sampling.answer while it samples (llm/answer_bias.py: a logit bias before each token); the engine
    # gives none to a backend without it (a remote server, which takes only a fixed bias).
    steers_answers: bool = False
    # Gives each generated token's log-probability (Sampling.logprobs): the local model does; a remote one not yet.
    gives_logprobs: bool = False
    # Scores a call's options for about the price of one (a GPU decodes them side by side, llm/batch.py's
    # score_width): a decision then asks every question it may need in one call. On a CPU each option's tokens
    # cost their share whatever the batch, so a question asked only when needed is cheaper.
    scores_together: bool = False
    # The backend's own way to choose a round's move; None: the engine scores options with the model.
    decider: DecisionMaker | None = None

    @abstractmethod
    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        """The system turn; `tools` are OpenAI function specs, rendered by templates that know them."""

    @abstractmethod
    def encode_message(self, role: Role, text: str) -> list[int]: ...

    @abstractmethod
    def generation_prefix(self) -> list[int]: ...

    @abstractmethod
    def encode_exchange(self, calls: Sequence[WrittenCall], results: Sequence[str]) -> list[int]:
        """Calls in the model's own tool-call syntax and the tools' replies, through its chat template (used only
        when `native_tool_format` is set)."""

    @abstractmethod
    def encode_text(self, text: str) -> list[int]:
        """Raw text inside the assistant's turn (a forced lead such as a code fence), no template wrapper."""

    @abstractmethod
    def count(self, text: str) -> int: ...

    @abstractmethod
    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        """Each option's log-probability as the continuation of `prompt` (for decisions among a closed set)."""

    @abstractmethod
    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        """Stream pieces, then exactly one Finish. `cache_key` names the conversation, for KV reuse."""

    def attach(self, assistant_of: Callable[[str], str | None]) -> None:  # noqa: B027 - a default that does nothing
        """Called once by the Engine built on this backend: `assistant_of(thread_id)` names the assistant of the
        thread's active run. Only a scripted model, whose steps may be scoped to an assistant, keeps it."""

    def close(self) -> None:  # noqa: B027 - a default that does nothing
        """Release what the backend holds (a model process, a connection); nothing by default."""
