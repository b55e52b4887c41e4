"""The llama.cpp backend, in two halves that can live in different processes.

- `LlamaTokenizer` opens the GGUF vocab-only (no weights, no compute): the chat template, token counts and message
  tokens. HTTP threads use it as messages arrive, with no lock and no round trip to the model.
- llm/batch.py's `BatchGenerator` holds the full model and generates, several sequences at once: KV-prefix reuse
  across turns, parked thread states, grammar-constrained decoding, token-by-token streaming, cancellation
  between tokens. Only one thread (the model process's main loop, or LlamaBackend under its lock) touches it.

`LlamaBackend` puts the two together in this process. The server runs the generator in a child process instead
(llm/process.py), so that a crash inside llama.cpp ends one run instead of the server.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from offline_assistants.llm import defaults
from offline_assistants.llm.backend import Finish, ModelError, Piece, Role, Sampling
from offline_assistants.llm.template import ChatTemplate, TemplateEncoder
from offline_assistants.llm.toolcalls import detect_native


def gpu_offload_supported() -> bool:
    import llama_cpp

    try:
        return bool(llama_cpp.llama_supports_gpu_offload())
    except AttributeError:  # pragma: no cover - older bindings
        return False


_params_lock = threading.Lock()
# llama-cpp-python reads seed 0 as "no seed" (`seed or LLAMA_DEFAULT_SEED`, and that default means random): any
# other value makes each call's sampler start from the same state, so a conversation samples the same way twice.
SEED = 1234


@contextlib.contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """`Llama(...)` has no argument for llama.cpp's weight repacking (`--no-repack`): the field lives on the
    params struct it builds from `llama_model_default_params()`. Wrap that one call while a model loads."""
    import llama_cpp.llama as llama_module

    bindings = llama_module.llama_cpp
    original = bindings.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = use_extra_bufts
        return value

    with _params_lock:
        bindings.llama_model_default_params = params
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


@contextlib.contextmanager
def _quiet_log() -> Iterator[None]:
    """A vocab-only handle still builds a small context, and llama.cpp then warns "n_ctx_seq (512) >
    n_ctx_train (0) -- possible training context overflow" (no weights, so no trained size): true of no model.
    Silence llama.cpp's log while the handle opens; errors still arrive as exceptions."""
    import llama_cpp
    from llama_cpp import _logger

    llama_cpp.llama_log_set(_silent_callback(), ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def _silent(_level: int, _text: bytes, _user_data: ctypes.c_void_p) -> None:
    return None


_SILENT: Any = None


def _silent_callback() -> Any:
    global _SILENT
    if _SILENT is None:
        import llama_cpp

        _SILENT = llama_cpp.llama_log_callback(_silent)  # kept alive here: llama.cpp holds the pointer
    return _SILENT


class LlamaTokenizer(TemplateEncoder):
    """Chat template and tokens of one GGUF, from a vocab-only handle (safe on any CPU: no weights are read)."""

    def __init__(self, path: Path, *, name: str | None = None) -> None:
        from llama_cpp import Llama

        self.path = Path(path)
        self.name = name or self.path.stem
        try:
            with _quiet_log():
                self._vocab = Llama(str(self.path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"could not load {self.path}: {exc}") from exc
        meta: dict[str, Any] = dict(self._vocab.metadata)
        self.metadata = meta
        self._eos = self._vocab.token_eos()
        self._bos = self._vocab.token_bos()
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "true") != "false"
        self.bos_id: int | None = self._bos if self._add_bos else None
        self.template = ChatTemplate(meta.get("tokenizer.chat_template"), bos_token=self.piece(self._bos),
                                     eos_token=self.piece(self._eos))
        digest = hashlib.sha256(self.template.source.encode())
        digest.update(str(self._vocab.n_vocab()).encode() + self.path.name.encode())
        self.tokenizer_key = digest.hexdigest()[:16]
        self.native_tool_format: str | None = detect_native(self.template.source) if self.template.native else None
        self.sampling_defaults = defaults.for_model(self.path, self.name, meta)

    def piece(self, token: int) -> str:
        return self._vocab.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    def trained_context(self) -> int:
        arch = self.metadata.get("general.architecture", "")
        try:
            return int(self.metadata.get(f"{arch}.context_length", 0))
        except ValueError:
            return 0

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(self, tokens: list[int]) -> str:
        """The text of a token list, special tokens included (what a server that takes only text is sent)."""
        return self._vocab.detokenize(tokens, special=True).decode("utf-8", "replace")


class TokenizedBackend:
    """A ModelBackend from a tokenizer and something that generates: the tokenizer answers every encode call
    here, the generator only ever sees whole prompts. The in-process and the process-backed backend share it."""

    def __init__(self, tokenizer: LlamaTokenizer) -> None:
        self.tokenizer = tokenizer
        self.path = tokenizer.path
        self.name = tokenizer.name
        self.tokenizer_key = tokenizer.tokenizer_key
        self.native_tool_format = tokenizer.native_tool_format
        self.sampling_defaults = tokenizer.sampling_defaults

    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        return self.tokenizer.encode_system(text, tools)

    def encode_message(self, role: Role, text: str) -> list[int]:
        return self.tokenizer.encode_message(role, text)

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode_text(text)

    def generation_prefix(self) -> list[int]:
        return self.tokenizer.generation_prefix()

    def count(self, text: str) -> int:
        return self.tokenizer.count(text)


class LlamaBackend(TokenizedBackend):
    """Tokenizer and model in this process: for notebooks and benchmarks. A crash in llama.cpp ends the process;
    the server uses llm/process.py's ProcessBackend instead. One call at a time (a lock): the model process is
    where several runs decode together."""

    def __init__(self, path: Path, *, name: str | None = None, n_ctx: int = 4096, n_threads: int = 1,
                 n_gpu_layers: int = -1, kv_states: int = 4, kv_cache_mb: int = 512, seed: int = SEED,
                 cpu_repack: bool = False) -> None:
        from offline_assistants.llm.batch import BatchGenerator

        super().__init__(LlamaTokenizer(path, name=name))
        self.generator = BatchGenerator(path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                                        kv_states=kv_states, kv_cache_mb=kv_cache_mb, seed=seed,
                                        cpu_repack=cpu_repack)
        self.n_ctx = self.generator.n_ctx
        self.n_threads = n_threads
        self.gpu_layers = self.generator.gpu_layers
        self.cpu_repack = cpu_repack
        self._lock = threading.Lock()

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Iterator[Piece | Finish]:
        with self._lock:
            yield from self.generator.generate(prompt, sampling, cache_key=cache_key, cancelled=cancelled)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        with self._lock:
            return self.generator.score(prompt, options, cache_key=cache_key)
