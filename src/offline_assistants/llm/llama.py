"""The llama.cpp backend: one GGUF, its own chat template, every usable core, KV-prefix reuse across turns.

Two llama.cpp handles are opened on the same file: a vocab-only one that HTTP threads use to tokenize messages
as they arrive, and the full model, which only the engine's single generation worker touches. That keeps the
server answering while a run generates, without a lock around the tokenizer.
"""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_assistants.llm.backend import Finish, ModelError, Piece, Role, Sampling
from offline_assistants.llm.template import ChatTemplate
from offline_assistants.llm.toolcalls import detect_native

log = logging.getLogger(__name__)


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


class LlamaBackend:
    def __init__(
        self,
        path: Path,
        *,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int = 1,
        n_gpu_layers: int = -1,
        kv_states: int = 4,
        kv_cache_mb: int = 512,
        seed: int = 0,
    ) -> None:
        from llama_cpp import Llama

        self.path = Path(path)
        self.name = name or self.path.stem
        gpu = n_gpu_layers if gpu_offload_supported() else 0
        try:
            # n_threads_batch too: llama-cpp-python defaults both to half the cores, which costs 1.5x here.
            self._llm = Llama(
                str(self.path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, n_gpu_layers=gpu,
                seed=seed, verbose=False,
            )
            self._vocab = Llama(str(self.path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"could not load {self.path}: {exc}") from exc
        self.n_ctx = self._llm.n_ctx()
        self.n_threads = n_threads
        self.gpu_layers = gpu
        meta: dict[str, Any] = dict(self._llm.metadata)
        self._eos = self._llm.token_eos()
        bos_id = self._llm.token_bos()
        self._bos = bos_id
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "true") != "false"
        piece = lambda t: self._vocab.detokenize([t], special=True).decode("utf-8", "replace") if t >= 0 else ""
        self.template = ChatTemplate(meta.get("tokenizer.chat_template"), bos_token=piece(bos_id),
                                     eos_token=piece(self._eos))
        digest = hashlib.sha256(self.template.source.encode())
        digest.update(str(self._llm.n_vocab()).encode() + self.path.name.encode())
        self.tokenizer_key = digest.hexdigest()[:16]
        self.native_tool_format: str | None = detect_native(self.template.source) if self.template.native else None
        self._kv_states: OrderedDict[str, Any] = OrderedDict()
        self._kv_limit = kv_states
        self._kv_bytes_limit = kv_cache_mb * 1024 * 1024
        self._current_key: str | None = None
        self._gen_lock = threading.Lock()

    # --- tokens -----------------------------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[int]:
        return self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def encode_system(self, text: str, tools: list[dict[str, Any]] | None = None) -> list[int]:
        tokens = self._tokenize(self.template.system(text, tools))
        if self._add_bos and (not tokens or tokens[0] != self._bos):
            tokens.insert(0, self._bos)
        return tokens

    def encode_message(self, role: Role, text: str) -> list[int]:
        return self._tokenize(self.template.message(role, text))

    def encode_text(self, text: str) -> list[int]:
        return self._tokenize(text)

    def generation_prefix(self) -> list[int]:
        return self._tokenize(self.template.generation_prefix())

    def count(self, text: str) -> int:
        return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # --- generation -------------------------------------------------------------------------------------------
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
        grammar = LlamaGrammar.from_string(sampling.grammar, verbose=False) if sampling.grammar else None
        with self._gen_lock:
            self._switch(cache_key)
            cached = self._cached_prefix(prompt)
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            produced = 0
            reason: str = "length"
            text = ""
            if max_tokens == 0:
                yield Finish("length", len(prompt) - cached, 0)
                return
            try:
                stream = self._llm.generate(
                    prompt, temp=sampling.temperature, top_p=sampling.top_p, top_k=0 if sampling.temperature else 1,
                    min_p=0.0, repeat_penalty=1.0, grammar=grammar,
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
            yield Finish(reason, len(prompt) - cached, produced)  # type: ignore[arg-type]

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
