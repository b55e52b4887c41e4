"""The llama.cpp backend, in two halves that can live in different processes.

- `LlamaTokenizer` opens the GGUF vocab-only (no weights, no compute): the chat template, token counts and message
  tokens. HTTP threads use it as messages arrive, with no lock and no round trip to the model.
- `LlamaGenerator` holds the full model and generates: KV-prefix reuse across turns, parked thread states,
  grammar-constrained decoding, token-by-token streaming, cancellation between tokens. Only one thread (the
  engine's worker, or the model process's main loop) touches it.

`LlamaBackend` puts the two together in this process. The server runs the generator in a child process instead
(llm/process.py), so that a crash inside llama.cpp ends one run instead of the server.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_assistants.llm import defaults
from offline_assistants.llm.gbnf import compile_constraint
from offline_assistants.llm.backend import Finish, ModelError, Piece, Role, Sampling
from offline_assistants.llm.template import ChatTemplate, TemplateEncoder
from offline_assistants.llm.toolcalls import detect_native


@dataclass
class _KVState:
    data: Any  # ctypes buffer holding sequence 0's KV cells
    size: int
    input_ids: Any  # numpy copy of the tokens those cells hold
    n_tokens: int


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


class LlamaGenerator:
    """The full model: generation with KV reuse. `cpu_repack` is llama.cpp's weight repacking into extra buffer
    types (AMX, and the CPU repacks); it crashes in the AMX path of GCC 12 builds, see llm/repack.py."""

    def __init__(
        self,
        path: Path | str,
        *,
        n_ctx: int = 4096,
        n_threads: int = 1,
        n_gpu_layers: int = -1,
        kv_states: int = 4,
        kv_cache_mb: int = 512,
        seed: int = SEED,
        cpu_repack: bool = False,
    ) -> None:
        from llama_cpp import Llama

        self.path = Path(path)
        gpu = n_gpu_layers if gpu_offload_supported() else 0
        try:
            with _model_params(cpu_repack):
                # n_threads_batch too: llama-cpp-python defaults both to half the cores, which costs 1.5x here.
                self._llm = Llama(
                    str(self.path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, n_gpu_layers=gpu,
                    seed=seed, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"could not load {self.path}: {exc}") from exc
        self.n_ctx = self._llm.n_ctx()
        self.n_threads = n_threads
        self.gpu_layers = gpu
        self.cpu_repack = cpu_repack
        self._eos = self._llm.token_eos()
        self._kv_states: OrderedDict[str, Any] = OrderedDict()
        self._kv_limit = kv_states
        self._kv_bytes_limit = kv_cache_mb * 1024 * 1024
        self._current_key: str | None = None
        self._gen_lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        return {"n_ctx": self.n_ctx, "gpu_layers": self.gpu_layers, "n_threads": self.n_threads,
                "cpu_repack": self.cpu_repack, "n_batch": self._llm.n_batch}

    def warmup(self) -> None:
        """Evaluate a short prompt and sample two tokens. The AMX crash (llm/repack.py) strikes on the first
        decode: in the model process that is now, while loading, not in a user's run."""
        tokens = self._llm.tokenize(b"The quick brown fox jumps over the lazy dog.", add_bos=True)
        for i, _token in enumerate(self._llm.generate(tokens, temp=0.0, top_k=1, min_p=0.0, repeat_penalty=1.0)):
            if i >= 1:
                break
        self._llm.reset()

    def _switch(self, cache_key: str | None) -> None:
        """Before serving another conversation, park this one's KV state and bring back that one's."""
        if cache_key == self._current_key or self._kv_limit <= 0:
            self._current_key = cache_key
            return
        if self._current_key is not None and self._llm.n_tokens > 0:
            self._kv_states[self._current_key] = self._save()
            self._kv_states.move_to_end(self._current_key)
            # Least recently used first out, by count and by bytes.
            while len(self._kv_states) > self._kv_limit or (
                len(self._kv_states) > 1 and self.kv_cache_bytes() > self._kv_bytes_limit
            ):
                self._kv_states.popitem(last=False)
        state = self._kv_states.pop(cache_key, None) if cache_key is not None else None
        if state is not None:
            self._load(state)
        self._current_key = cache_key

    # Llama.save_state()/load_state() also copy the full logits buffer (96 MB at n_ctx 2048) and the state
    # several times over: 230-570 ms a switch. The KV cells of sequence 0 and the token list are all that prefix
    # reuse needs: tens of ms.
    def _save(self) -> _KVState:
        import llama_cpp

        ctx = self._llm._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        data = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, data, size, 0))
        n = self._llm.n_tokens
        return _KVState(data, written, self._llm.input_ids[:n].copy(), n)

    def _load(self, state: _KVState) -> None:
        import llama_cpp

        self._llm._ctx.kv_cache_clear()
        if state.size == 0 or int(llama_cpp.llama_state_seq_set_data(self._llm._ctx.ctx, state.data, state.size, 0)) == 0:
            self._llm.n_tokens = 0  # could not restore: the next call evaluates its prompt in full
            return
        self._llm.input_ids[: state.n_tokens] = state.input_ids
        self._llm.n_tokens = state.n_tokens
        self._llm._requires_eval = True  # logits are not restored: an exact-prompt hit must replay a token

    def kv_cache_bytes(self) -> int:
        return sum(state.size for state in self._kv_states.values())

    def generate(
        self,
        prompt: list[int],
        sampling: Sampling,
        *,
        cache_key: str | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[Piece | Finish]:
        from llama_cpp import LlamaGrammar

        if len(prompt) + 1 > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        max_tokens = max(0, min(sampling.max_tokens, self.n_ctx - len(prompt)))
        grammar = (LlamaGrammar.from_string(compile_constraint(sampling.constraint), verbose=False)
                   if sampling.constraint is not None else None)
        with self._gen_lock:
            started = time.perf_counter()
            self._switch(cache_key)
            switch_ms = (time.perf_counter() - started) * 1e3
            cached = self._cached_prefix(prompt)
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            produced = 0
            reason: str = "length"
            text = ""
            if max_tokens == 0:
                yield Finish("length", len(prompt) - cached, 0, switch_ms)
                return
            try:
                stream = self._llm.generate(
                    prompt, temp=sampling.temperature, top_p=sampling.top_p, top_k=0 if sampling.temperature else 1,
                    min_p=0.0, repeat_penalty=1.0 if grammar else sampling.repeat_penalty, grammar=grammar,
                )
                for token in stream:
                    if self._is_end(token):
                        reason = "stop"
                        break
                    produced += 1
                    piece = decoder.decode(self._llm.detokenize([token]))
                    text += piece
                    yield Piece(token, piece)
                    if sampling.stop and any(s in text for s in sampling.stop):
                        reason = "stop"
                        break
                    if cancelled():
                        reason = "cancelled"
                        break
                    if produced >= max_tokens:
                        break
            except (RuntimeError, ValueError) as exc:
                raise ModelError(str(exc)) from exc
            yield Finish(reason, len(prompt) - cached, produced, switch_ms)  # type: ignore[arg-type]

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        """The log-probability of each option (a token list) as the continuation of `prompt`. The prompt's
        cached prefix is reused, options that share leading tokens share their evaluation, and each option
        costs one single-token decode per token but its last."""
        import numpy as np

        if not prompt or any(not option for option in options):
            raise ModelError("score needs a prompt and non-empty options")
        if len(prompt) + max(len(o) for o in options) > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        llm = self._llm

        def log_softmax() -> Any:
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            shifted = logits - logits.max()
            return shifted - np.log(np.exp(shifted).sum())

        with self._gen_lock:
            self._switch(cache_key)
            # Re-evaluate at least the prompt's last token: its logits are what the first option token needs.
            keep = min(self._cached_prefix(prompt), len(prompt) - 1)
            llm.n_tokens = keep
            try:
                llm.eval(prompt[keep:])
                base = llm.n_tokens
                path: list[int] = []  # option tokens now in the KV cache after the prompt
                dists = [log_softmax()]  # dists[i]: next-token log-probabilities after prompt + path[:i]
                scores = []
                for option in options:
                    common = 0
                    while common < min(len(path), len(option) - 1) and path[common] == option[common]:
                        common += 1
                    del path[common:]
                    del dists[common + 1:]
                    llm.n_tokens = base + common
                    for token in option[common:-1]:
                        llm.eval([token])
                        path.append(token)
                        dists.append(log_softmax())
                    scores.append(float(sum(dists[i][t] for i, t in enumerate(option))))
            except (RuntimeError, ValueError) as exc:
                raise ModelError(str(exc)) from exc
            return scores

    def _cached_prefix(self, prompt: list[int]) -> int:
        """How many leading prompt tokens the KV cache already holds (reported as not evaluated). Vectorised:
        a per-element Python loop over a 3,000-token prompt would sit on every model call."""
        import numpy as np

        held = self._llm.input_ids[: min(self._llm.n_tokens, len(prompt))]
        differ = np.flatnonzero(held != np.asarray(prompt[: len(held)], dtype=held.dtype))
        return int(differ[0]) if differ.size else len(held)

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return token == self._eos or bool(llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token))


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
    the server uses llm/process.py's ProcessBackend instead."""

    def __init__(self, path: Path, *, name: str | None = None, n_ctx: int = 4096, n_threads: int = 1,
                 n_gpu_layers: int = -1, kv_states: int = 4, kv_cache_mb: int = 512, seed: int = SEED,
                 cpu_repack: bool = False) -> None:
        super().__init__(LlamaTokenizer(path, name=name))
        self.generator = LlamaGenerator(path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                                        kv_states=kv_states, kv_cache_mb=kv_cache_mb, seed=seed,
                                        cpu_repack=cpu_repack)
        self.n_ctx = self.generator.n_ctx
        self.n_threads = n_threads
        self.gpu_layers = self.generator.gpu_layers
        self.cpu_repack = cpu_repack

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Iterator[Piece | Finish]:
        return self.generator.generate(prompt, sampling, cache_key=cache_key, cancelled=cancelled)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        return self.generator.score(prompt, options, cache_key=cache_key)
