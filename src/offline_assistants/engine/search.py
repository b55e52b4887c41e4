"""Searching vector stores: BM25 over the FTS5 index and cosine over the embeddings, fused into one score in
[0, 1] (retrieval/ranking.py), attribute filters applied before the top-k cut, several stores ranked together.
The search endpoint and the file_search tool both come here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from offline_assistants.retrieval.embeddings import Embedder
from offline_assistants.retrieval.filters import matches
from offline_assistants.retrieval.ranking import DEFAULT_FUSION, fts_query, query_terms
from offline_assistants.store import Store

BM25_CANDIDATES = 200  # chunks the full-text side contributes per query before fusion


@dataclass(frozen=True)
class Hit:
    vector_store_id: str
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any]


class Searcher:
    def __init__(self, store: Store, embedder: Callable[[], Embedder]) -> None:
        self.store = store
        self._embedder = embedder

    def search(self, store_ids: list[str], queries: list[str], *, max_results: int,
               filters: dict[str, Any] | None = None, score_threshold: float | None = None) -> list[Hit]:
        stores = self.store.vector_stores
        chunks, matrix = stores.searchable(store_ids)
        if not chunks:
            return []
        attributes = stores.file_attributes(store_ids)
        allowed = np.array([filters is None or matches(filters, attributes.get((c.vector_store_id, c.file_id), {}))
                            for c in chunks], dtype=bool)
        index = {c.pk: i for i, c in enumerate(chunks)}
        best = np.zeros(len(chunks), dtype=np.float64)
        vectors = self._embedder().embed(queries)
        for query, vector in zip(queries, vectors):
            bm25 = np.zeros(len(chunks), dtype=np.float64)
            for pk, score in stores.bm25(fts_query(query), store_ids, BM25_CANDIDATES).items():
                if pk in index:
                    bm25[index[pk]] = score
            cosine = matrix @ np.asarray(vector, dtype=np.float32)
            best = np.maximum(best, DEFAULT_FUSION.scores(bm25, cosine, len(query_terms(query))))
        best[~allowed] = -1.0  # filtered out before the cut, so they never take a place in the top k
        order = np.argsort(-best, kind="stable")
        names: dict[str, str] = {}
        hits: list[Hit] = []
        for i in order[:max_results]:
            score = float(best[i])
            if score < 0 or (score_threshold is not None and score < score_threshold):
                break
            chunk = chunks[int(i)]
            if chunk.file_id not in names:
                names[chunk.file_id] = self.store.files.filename(chunk.file_id)
            hits.append(Hit(chunk.vector_store_id, chunk.file_id, names[chunk.file_id], score, chunk.text,
                            attributes.get((chunk.vector_store_id, chunk.file_id), {})))
        return hits
