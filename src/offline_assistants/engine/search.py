"""Searching vector stores: BM25 over the FTS5 index and cosine over the embeddings, fused into one score in
[0, 1] (retrieval/ranking.py), attribute filters applied before the top-k cut, several stores ranked together.
The search endpoint and the file_search tool both come here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from offline_assistants.retrieval.embeddings import Embedder
from offline_assistants.retrieval.filters import matches
from offline_assistants.retrieval.ranking import DEFAULT_FUSION, lexical_query, top_k
from offline_assistants.store import Store
from offline_assistants.store.vector_stores import ChunkRow

BM25_CANDIDATES = 1000  # chunks (of all stores) the full-text side contributes per query before fusion


@dataclass(frozen=True)
class Hit:
    vector_store_id: str
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class _Loaded:
    """One store's completed chunks and their embeddings, as of a store generation."""

    generation: int
    chunks: list[ChunkRow]
    matrix: np.ndarray


class Searcher:
    def __init__(self, store: Store, embedder: Callable[[], Embedder]) -> None:
        self.store = store
        self._embedder = embedder
        # Decoding every embedding blob per search would cost O(chunks) in SQLite and Python; a store's matrix is
        # kept until the store changes (VectorStoreStore.generation).
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    def _store(self, store_id: str) -> _Loaded:
        generation = self.store.vector_stores.generation(store_id)
        with self._lock:
            cached = self._loaded.get(store_id)
            if cached is not None and cached.generation == generation:
                return cached
        chunks, matrix = self.store.vector_stores.searchable([store_id])
        loaded = _Loaded(generation, chunks, matrix)
        with self._lock:
            self._loaded[store_id] = loaded
        return loaded

    def search(self, store_ids: list[str], queries: list[str], *, max_results: int,
               filters: dict[str, Any] | None = None, score_threshold: float | None = None) -> list[Hit]:
        stores = self.store.vector_stores
        loaded = [self._store(s) for s in store_ids]
        chunks = [c for part in loaded for c in part.chunks]
        if not chunks:
            return []
        matrix = np.concatenate([part.matrix for part in loaded if part.chunks]) if len(loaded) > 1 \
            else loaded[0].matrix
        attributes = stores.file_attributes(store_ids)
        allowed: np.ndarray | None = None
        if filters is not None:
            # Filters are per file: decide each file once, then spread to its chunks.
            verdict = {key: matches(filters, attrs) for key, attrs in attributes.items()}
            allowed = np.fromiter((verdict.get((c.vector_store_id, c.file_id), False) for c in chunks), dtype=bool,
                                  count=len(chunks))
        index = {c.pk: i for i, c in enumerate(chunks)}
        best = np.zeros(len(chunks), dtype=np.float64)
        vectors = self._embedder().embed(queries)
        for query, vector in zip(queries, vectors):
            # The rarest terms within a budget of matching rows: FTS5 scores every row an OR query matches, and a
            # question of common words would otherwise cost 100-240 ms at 100k chunks (benchmarks/retrieval.py).
            lexical = lexical_query(query, stores.term_count)
            bm25 = np.zeros(len(chunks), dtype=np.float64)
            for pk, score in stores.bm25(lexical.match, BM25_CANDIDATES).items():
                if pk in index:  # one of the searched stores' completed chunks
                    bm25[index[pk]] = score
            cosine = matrix @ np.asarray(vector, dtype=np.float32)
            best = np.maximum(best, DEFAULT_FUSION.scores(bm25, cosine, lexical.n_terms))
        if allowed is not None:
            best[~allowed] = -1.0  # filtered out before the cut, so they never take a place in the top k
        order = top_k(best, max_results)
        names: dict[str, str] = {}
        hits: list[Hit] = []
        for i in order:
            score = float(best[i])
            if score < 0 or (score_threshold is not None and score < score_threshold):
                break
            chunk = chunks[int(i)]
            if chunk.file_id not in names:
                names[chunk.file_id] = self.store.files.filename(chunk.file_id)
            hits.append(Hit(chunk.vector_store_id, chunk.file_id, names[chunk.file_id], score, chunk.text,
                            attributes.get((chunk.vector_store_id, chunk.file_id), {})))
        return hits
