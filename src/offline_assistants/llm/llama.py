"""The llama.cpp backend, in two halves that can live in different processes.

- `LlamaTokenizer` opens the GGUF vocab-only (no weights, no compute): the chat template, token counts and message
  tokens. HTTP threads use it as messages arrive, with no lock and no round trip to the model.
- llm/batch.py's `BatchedLlama` holds the full model and generates, several sequences at once: KV-prefix reuse
  across turns, parked thread states, grammar-constrained decoding, token-by-token streaming, cancellation
  between tokens. Only one thread (the model process's main loop, or LlamaBackend under its lock) touches it.

`LlamaBackend` puts the two together in this process. The server runs `BatchedLlama` in a child process instead
(llm/process.py), so that a crash inside llama.cpp ends one run instead of the server.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_assistants.llm import defaults
from offline_assistants.llm.backend import ModelError, Sampling, Stream
from offline_assistants.llm.batch import BatchedLlama
from offline_assistants.llm.llama_params import SEED, quiet_log
from offline_assistants.llm.template import ChatTemplate, TemplateEncoder
from offline_assistants.llm.tokens import TokenizedBackend
from offline_assistants.llm.toolcalls import detect_native


class LlamaTokenizer(TemplateEncoder):
    """Chat template and tokens of one GGUF, from a vocab-only handle (safe on any CPU: no weights are read)."""

    local = True

    def __init__(self, path: Path, *, name: str | None = None) -> None:
        from llama_cpp import Llama

        self.path = Path(path)
        self.name = name or self.path.stem
        try:
            with quiet_log():
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


class LlamaBackend(TokenizedBackend):
    """Tokenizer and model in this process: for notebooks and benchmarks. A crash in llama.cpp ends the process;
    the server uses llm/process.py's ProcessBackend instead. One call at a time (a lock): the model process is
    where several runs decode together."""

    steers_answers = True  # llm/batch.py applies Sampling.answer
    gives_logprobs = True  # llm/batch.py reads them off the logits

    def __init__(self, path: Path, *, name: str | None = None, n_ctx: int = 4096, n_threads: int = 1,
                 n_gpu_layers: int = -1, kv_states: int = 4, kv_cache_mb: int = 512, seed: int = SEED,
                 cpu_repack: bool = False) -> None:
        tokenizer = LlamaTokenizer(path, name=name)
        super().__init__(tokenizer)
        self.path = tokenizer.path
        self.generator = BatchedLlama(path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                                        kv_states=kv_states, kv_cache_mb=kv_cache_mb, seed=seed,
                                        cpu_repack=cpu_repack)
        self.n_ctx = self.generator.n_ctx
        self.scores_together = self.generator.score_width > 1
        self.n_threads = n_threads
        self.gpu_layers = self.generator.gpu_layers
        self.cpu_repack = cpu_repack
        self._lock = threading.Lock()

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        with self._lock:
            yield from self.generator.generate(prompt, sampling, cache_key=cache_key, cancelled=cancelled)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        with self._lock:
            return self.generator.score(prompt, options, cache_key=cache_key)
