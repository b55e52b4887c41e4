"""Text to vectors: the `Embedder` protocol and its two implementations.

* `WordLlamaEmbedder`, the default: wordllama's `l2_supercat` 256-dim static token embeddings (16 MB, inside the
  wheel), mean-pooled. No network, ~0.5 s to load, thousands of chunks a second on one core. Static embeddings
  are a weak semantic model on their own; they earn their place next to BM25 in the hybrid (see ranking.py and
  benchmarks/retrieval.py).
* `LlamaEmbedder(path)`, for a user's `--embedding-model PATH.gguf`: any GGUF that llama.cpp can embed with
  (nomic-embed, bge, e5, gte...), through llama-cpp-python.

Every embedder returns float32 rows of unit L2 norm, so a dot product is the cosine. A text with no known token
embeds to the zero vector (cosine 0 with everything) rather than NaN. `name` identifies the vector space: vectors
made under one name must never be compared with vectors made under another, so a store records it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from offline_assistants.retrieval.chunking import Chunk

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) float32, each row L2-normalised (or all zero)."""
        ...


def normalise(x: npt.NDArray[Any]) -> Vectors:
    """Rows scaled to unit L2 norm, in float32; zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


class WordLlamaEmbedder:
    """wordllama l2_supercat, loaded from the files inside the installed wheel."""

    def __init__(self, dim: int = 256, batch_size: int = 32) -> None:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        # wordllama's inference module calls logging.basicConfig(level=INFO) on import, which would make every
        # library's INFO records print on the server's stderr. Undo exactly that, and only if it happened here.
        import wordllama
        from wordllama import WordLlama

        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)

        # `disable_download=True` alone looks for the tokenizer under wordllama/tokenizer/ (singular; the wheel has
        # tokenizers/) and fails. With the package folder as cache_dir, both files resolve inside the wheel.
        self._model = WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, dim=dim, disable_download=True
        )
        self._dim = dim
        self._batch_size = batch_size
        # The tokenizer instance inside the model has padding state; one embed call at a time keeps it simple.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"wordllama-l2_supercat-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        with self._lock:
            # Batches sorted by length: wordllama pads each batch to its longest text (the mask keeps the mean
            # right, but the padding is still gathered and summed), so a batch of like lengths wastes nothing.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            out = np.empty((len(texts), self._dim), dtype=np.float32)
            sorted_texts = [texts[i] for i in order]
            vecs = self._model.embed(sorted_texts, norm=False, batch_size=self._batch_size)
            out[np.asarray(order)] = vecs
        return normalise(out)


    def embed_token_ids(self, ids: Sequence[npt.NDArray[np.integer]]) -> Vectors:
        """Vectors for texts already tokenized with tokens.py's tokenizer (the same file wordllama ships): the mean
        of their token embeddings, which is all wordllama's pooling is. Skips tokenizing a second time."""
        table = self._model.embedding
        out = np.zeros((len(ids), self._dim), dtype=np.float32)
        for i, row in enumerate(ids):
            if len(row):
                out[i] = table[np.clip(row, 0, len(table) - 1)].mean(axis=0)
        return normalise(out)


def embed_chunks(embedder: Embedder, chunks: Sequence[Chunk]) -> Vectors:
    """Vectors for chunks: through their token ids when the embedder can take them (WordLlama, which shares the
    chunker's tokenizer; about 3x faster indexing, as the text is not tokenized again), else through embed()."""
    if isinstance(embedder, WordLlamaEmbedder) and all(c.token_ids is not None for c in chunks):
        return embedder.embed_token_ids([c.token_ids for c in chunks if c.token_ids is not None])
    return embedder.embed([c.text for c in chunks])


class LlamaEmbedder:
    """Any embedding GGUF through llama-cpp-python (imported only when one is asked for)."""

    def __init__(self, path: str | Path, *, n_ctx: int = 2048, n_threads: int | None = None,
                 cpu_repack: bool = False) -> None:
        from llama_cpp import Llama

        from offline_assistants.llm.llama_params import model_params

        self._path = Path(path)
        # Repacking off by default: it segfaults in llama.cpp's AMX path on some builds (llm/repack.py), and this
        # runs in the server's own process, where a crash takes everything down. Embedding is not the hot path.
        # n_batch = n_ubatch = n_ctx: llama.cpp embeds a sequence in one micro-batch (non-causal models must), so a
        # chunk up to the context size fits. 800-token chunks in our tokenizer are well under 2048 in any other.
        with model_params(cpu_repack):
            self._llm = Llama(
                model_path=str(self._path), embedding=True, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                n_threads=n_threads, verbose=False,
            )
        self._dim = int(self._llm.n_embd())
        self._lock = threading.Lock()  # a Llama context is not safe to use from two threads at once

    @property
    def name(self) -> str:
        return f"gguf:{self._path.name}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        with self._lock:
            for i, text in enumerate(texts):
                # One text per call: llama-cpp-python's batched embed packs texts into one context and
                # mis-pools on models without a pooling layer. truncate=True cuts what is over n_ctx.
                if not text.strip():
                    continue
                vec = np.asarray(self._llm.embed(text, normalize=False, truncate=True), dtype=np.float32)
                # A model without a pooling type returns one vector per token: mean-pool them ourselves.
                out[i] = vec.mean(axis=0) if vec.ndim == 2 else vec
        return normalise(out)
