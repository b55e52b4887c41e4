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

Each also tokenizes in its own vocabulary and embeds token ids, which /v1/embeddings needs (token-id inputs, usage
counts, the per-input limit) and which spares a second tokenization when the ids are already known.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from offline_assistants.retrieval.chunking import Chunk

Vectors = npt.NDArray[np.float32]
TokenIds = npt.NDArray[np.int32]
WORDLLAMA_DIM = 256  # of the dimensions l2_supercat comes in (64 to 1024): what file search was measured with


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def vocab_size(self) -> int:
        """Token ids run from 0 to vocab_size - 1."""
        ...

    @property
    def max_input_tokens(self) -> int:
        """The most tokens one input may have: what the model can take at once."""
        ...

    @property
    def shortens(self) -> bool:
        """Whether a vector's first N dimensions, renormalised, are a vector of the same space (Matryoshka-style
        training): what `dimensions` of /v1/embeddings asks for."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) float32, each row L2-normalised (or all zero)."""
        ...

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        """Each text's token ids, as embed() would feed them to the model (special tokens included)."""
        ...

    def embed_token_ids(self, ids: Sequence[TokenIds]) -> Vectors:
        """Vectors of inputs given as token ids of this embedder's vocabulary, each within max_input_tokens."""
        ...


def embedder_name(path: Path | None) -> str:
    """The name of the embedder for `--embedding-model` (None: the built-in one), known without loading it."""
    return _gguf_name(path) if path is not None else _wordllama_name(WORDLLAMA_DIM)


def _wordllama_name(dim: int) -> str:
    return f"wordllama-l2_supercat-{dim}"


def _gguf_name(path: Path) -> str:
    return f"gguf:{path.name}"


def normalise(x: npt.NDArray[Any]) -> Vectors:
    """Rows scaled to unit L2 norm, in float32; zero rows stay zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


class WordLlamaEmbedder:
    """wordllama l2_supercat, loaded from the files inside the installed wheel.

    A static embedding has no window: any number of tokens averages the same way. The per-input limit is the
    hosted API's (8192), so a request behaves as it would there; counted in Llama-2 tokens (tokens.py).
    """

    max_input_tokens = 8192
    # l2_supercat is trained Matryoshka-style (wordllama itself truncates its 1024 dimensions to the `dim` asked).
    shortens = True

    def __init__(self, dim: int = WORDLLAMA_DIM, batch_size: int = 32) -> None:
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
        # The token table with a zero row after the last token: what padding gathers in embed_token_ids.
        table = self._model.embedding
        self._padded = np.vstack([table, np.zeros((1, table.shape[1]), dtype=table.dtype)])
        # The tokenizer instance inside the model has padding state; one embed call at a time keeps it simple.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return _wordllama_name(self._dim)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def vocab_size(self) -> int:
        return len(self._model.embedding)

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

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        from offline_assistants.retrieval.tokens import tokenizer

        # tokens.py's tokenizer is the file wordllama ships, without its padding state (so no lock); no special
        # tokens, as wordllama adds none; no offsets computed (the _fast variant: a third less time).
        encodings = tokenizer().encode_batch_fast(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int32) for e in encodings]

    def embed_token_ids(self, ids: Sequence[npt.NDArray[np.integer]]) -> Vectors:
        """Vectors for texts already tokenized with tokens.py's tokenizer (the same file wordllama ships): the mean
        of their token embeddings, which is all wordllama's pooling is. Skips tokenizing a second time."""
        out = np.zeros((len(ids), self._dim), dtype=np.float32)
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        # Inputs of like lengths pooled together, padded to the group's longest with the zero row: one gather and
        # one sum per group (a numpy call per input costs more than the arithmetic). A group is bounded in inputs
        # (32 measured fastest) and in gathered rows, since the gather holds one table row per padded token.
        order = np.argsort(lengths, kind="stable")
        start = 0
        while start < len(order):
            stop = start + 1
            while (stop < len(order) and stop - start < _GROUP
                   and (stop + 1 - start) * lengths[order[stop]] <= _GATHER_TOKENS):
                stop += 1
            self._mean_pool(ids, lengths, order[start:stop], out)
            start = stop
        return normalise(out)

    def _mean_pool(self, ids: Sequence[npt.NDArray[np.integer]], lengths: npt.NDArray[np.int64],
                   group: npt.NDArray[np.intp], out: Vectors) -> None:
        width = int(lengths[group[-1]])  # sorted: the last is the longest
        if width == 0:
            return
        pad = len(self._padded) - 1
        index = np.full((len(group), width), pad, dtype=np.intp)
        for k, i in enumerate(group.tolist()):
            index[k, :lengths[i]] = ids[i]
        np.clip(index, 0, pad, out=index)
        out[group] = self._padded[index].sum(axis=1) / np.maximum(lengths[group], 1)[:, None].astype(np.float32)


# WordLlamaEmbedder.embed_token_ids: inputs pooled at once, and table rows gathered at once (32 MB at 256 dims).
_GROUP = 32
_GATHER_TOKENS = 32768


def embed_chunks(embedder: Embedder, chunks: Sequence[Chunk]) -> Vectors:
    """Vectors for chunks: through their token ids when the embedder can take them (WordLlama, which shares the
    chunker's tokenizer; about 3x faster indexing, as the text is not tokenized again), else through embed()."""
    if isinstance(embedder, WordLlamaEmbedder) and all(c.token_ids is not None for c in chunks):
        return embedder.embed_token_ids([c.token_ids for c in chunks if c.token_ids is not None])
    return embedder.embed([c.text for c in chunks])


class LlamaEmbedder:
    """Any embedding GGUF through llama-cpp-python (imported only when one is asked for).

    One input is one sequence decoded alone, through llama.cpp's own API: llama-cpp-python's `embed` takes text
    only, and its batched form packs texts into one context and mis-pools on models without a pooling layer.
    """

    # Whether a GGUF was trained to be cut short (nomic-embed v1.5 was, bge was not) is not in its metadata.
    shortens = False

    def __init__(self, path: str | Path, *, n_ctx: int = 2048, n_threads: int | None = None,
                 cpu_repack: bool = False) -> None:
        from llama_cpp import Llama
        from llama_cpp import llama_cpp as L

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
        self._vocab = int(self._llm.n_vocab())
        # A BERT-style model has positions only up to what it was trained on; past that, nothing it says is right.
        trained = int(L.llama_model_n_ctx_train(self._llm.model))
        self._max_tokens = min(n_ctx, trained) if trained > 0 else n_ctx
        # A model without a pooling type returns one vector per token: those are mean-pooled here.
        self._pooled = int(L.llama_pooling_type(self._llm.ctx)) != L.LLAMA_POOLING_TYPE_NONE
        self._batch = L.llama_batch_init(n_ctx, 0, 1)
        weakref.finalize(self, L.llama_batch_free, self._batch)
        self._lock = threading.Lock()  # a Llama context is not safe to use from two threads at once

    @property
    def name(self) -> str:
        return _gguf_name(self._path)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def vocab_size(self) -> int:
        return self._vocab

    @property
    def max_input_tokens(self) -> int:
        return self._max_tokens

    def tokenize(self, texts: Sequence[str]) -> list[TokenIds]:
        # add_bos: the model's own special tokens (BOS, or BERT's [CLS] ... [SEP]), as llama-cpp-python's embed adds.
        return [np.asarray(self._llm.tokenize(t.encode("utf-8"), add_bos=True, special=False), dtype=np.int32)
                for t in texts]

    def embed(self, texts: Sequence[str]) -> Vectors:
        # File search: a blank text is the zero vector, and a chunk too long for the model is cut to what it takes.
        ids = [row[:self._max_tokens] if text.strip() else row[:0]
               for text, row in zip(texts, self.tokenize(texts), strict=True)]
        return self.embed_token_ids(ids)

    def embed_token_ids(self, ids: Sequence[npt.NDArray[np.integer]]) -> Vectors:
        out = np.zeros((len(ids), self._dim), dtype=np.float32)
        with self._lock:
            for i, row in enumerate(ids):
                if len(row):
                    out[i] = self._decode(row)
        return normalise(out)

    def _decode(self, ids: npt.NDArray[np.integer]) -> Vectors:
        from llama_cpp import llama_cpp as L

        n = len(ids)
        if n > self._max_tokens:
            raise ValueError(f"{n} tokens: more than the {self._max_tokens} this model takes at once")
        batch, ctx = self._batch, self._llm.ctx
        batch.n_tokens = n
        for j, token in enumerate(ids.tolist()):
            batch.token[j], batch.pos[j], batch.n_seq_id[j], batch.logits[j] = token, j, 1, True
            batch.seq_id[j][0] = 0
        memory = L.llama_get_memory(ctx)
        if memory:  # a non-causal model may have no KV memory to clear
            L.llama_memory_clear(memory, True)
        if int(L.llama_decode(ctx, batch)) != 0:
            raise RuntimeError(f"llama_decode failed on a sequence of {n} tokens")
        if self._pooled:
            return np.ctypeslib.as_array(L.llama_get_embeddings_seq(ctx, 0), shape=(self._dim,)).copy()
        per_token = np.ctypeslib.as_array(L.llama_get_embeddings(ctx), shape=(n, self._dim))
        return per_token.mean(axis=0)
