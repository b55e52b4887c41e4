"""Hybrid ranking: BM25 (from the store's SQLite FTS5 table) fused with embedding cosine into one score in [0, 1].

The fused score is absolute, not relative to the other hits of the same query, so a `score_threshold` means the
same thing for every query and hits from several vector stores can be sorted together:

    lexical  = b / (b + half · n_terms)               b = the BM25 score (positive), n_terms = terms in the query
    semantic = clip((cosine - floor) / (1 - floor), 0, 1)
    score    = weight · lexical + (1 - weight) · semantic

`lexical` saturates: half of its range is reached when each query term contributes `half` to BM25, so a long query
is not favoured merely for having more terms to match. `semantic` maps the cosines that unrelated texts have
anyway (static embeddings are never orthogonal to anything) to 0. Both parts rise monotonically with their input,
so the score does too. The defaults in `DEFAULT_FUSION` were tuned on one half of the labelled query set in
benchmarks/retrieval.py and checked on the other (nDCG@10 0.420 against BM25 0.338 and embeddings 0.391). That
script also measures reciprocal-rank fusion: it ranks worse (0.372), and its best hit scores near 1 whether or not
the store holds an answer, so a threshold cannot tell "found" from "nothing here" (AUC 0.88; this score: 0.996).

Candidates: BM25 comes from FTS5 for the top matches only, cosine for every chunk (a matrix product), so the
store fuses the union of the FTS top-N and the cosine top-N. A chunk missing from the FTS top-N counts as
lexical 0.

FTS5 syntax is never passed through from users: `fts_query` keeps only word characters, quotes every term and
joins them with OR (FTS5's bare juxtaposition means AND, which would make a long question match nothing).
`lexical_query` does the same within a budget of matched rows, which bounds what the BM25 side costs however
big the store (see POSTINGS_BUDGET). `hybrid_search` then fuses only the candidates that can make the top k.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)

# What the store's FTS5 table should be created with: Porter stemming over unicode61 (case folding, Unicode
# word characters, accents folded), so "indexing" finds "indexed". fts_query's terms are tokenized by it as well.
FTS5_TOKENIZE = "porter unicode61 remove_diacritics 2"

# A term: a run of letters/digits, with connectors inside it (os.path.join, snake_case, e-mail, C++'s ::). Quoted,
# FTS5 tokenizes such a term into a phrase, so "os.path.join" must match those three words in a row.
_TERM = re.compile(r"[^\W_]+(?:[_.'’\-:/][^\W_]+)*")
# Common English function words: they cost the most to match (every chunk has them) and rank almost nothing.
STOPWORDS = frozenset("""
    a about above after again against all am an and any are as at be because been before being below between both
    but by can could did do does doing down during each few for from further had has have having he her here hers
    herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
    once only or other our ours ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself yourselves
""".split())
MAX_TERMS = 32  # a pasted page should not become a 500-term OR that scans every posting list


def query_terms(user_text: str, max_terms: int = MAX_TERMS) -> list[str]:
    """The distinct search terms of a user's text, in order, stopwords dropped (unless nothing else is left)."""
    seen: set[str] = set()
    terms: list[str] = []
    for m in _TERM.finditer(user_text):
        term = m.group(0)
        folded = term.casefold()
        if folded not in seen:
            seen.add(folded)
            terms.append(term)
    content = [t for t in terms if t.casefold() not in STOPWORDS]
    return (content or terms)[:max_terms]


def fts_query(user_text: str, max_terms: int = MAX_TERMS) -> str:
    """A safe FTS5 MATCH expression for arbitrary user text: `"term1" OR "term2" ...`.

    Every term is a double-quoted FTS5 string (a `"` inside is doubled, though _TERM admits none), so words like
    AND, OR, NOT, NEAR and characters like * ^ - : ( ) are never operators. Returns "" when the text has no word
    at all ("", "?!", "***"): FTS5 rejects an empty MATCH, so the caller skips the lexical part then.
    """
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in query_terms(user_text, max_terms))


# How many rows the BM25 side may score per query. FTS5 scores every row an OR query matches (~0.75 µs a row, twice
# that with the store's JOIN) and cannot prune, so at 100k chunks a question made of common words ("list",
# "statement", "object") costs 100-200 ms. Counting a term's matches costs ~20x less than scoring them, so
# lexical_query counts first and keeps the rarest terms that fit. At 1k chunks the budget never binds; at 100k it
# drops the commonest terms of most questions. benchmarks/retrieval.py, quiet 2-core Xeon, the store's query
# without a JOIN: 10k rows p50 17.7 ms at 100k chunks and nDCG@10 0.422 (no quality lost); 5k 19.3 ms and 0.408
# (same speed within noise, less quality). With the JOIN form the store used first, 10k cost 26 ms.
POSTINGS_BUDGET = 10_000


@dataclass(frozen=True, slots=True)
class LexicalQuery:
    match: str  # the FTS5 MATCH expression; "" means: no lexical part, skip the MATCH
    n_terms: int  # what Fusion.lexical's saturation divides by: the terms kept and those dropped as too common
    dropped: tuple[str, ...] = ()  # terms left out: absent from the index, or too common for the budget


def lexical_query(user_text: str, doc_freq: Callable[[str], int] | None = None, *,
                  budget: int = POSTINGS_BUDGET, max_terms: int = MAX_TERMS) -> LexicalQuery:
    """The FTS5 query for user text, within a row budget when `doc_freq` is given.

    doc_freq(quoted_term) is how many chunks match that FTS5 string (the store runs `SELECT count(*) FROM fts
    WHERE fts MATCH ?`, ideally cached until the index changes). Terms are taken rarest first while their counts
    add up to at most `budget`; the rarest term that matches anything is always kept, so only a query of nothing
    but very common words can exceed the budget (by that one term). A term dropped as too common still counts in
    n_terms: its small BM25 share is taken as 0, so a hit's lexical score stays what it would be unpruned, near
    enough, and comparable across store sizes. A term that matches nothing is dropped and not counted: it cannot
    add to BM25, and counting it would punish every hit for a typo. Without doc_freq: fts_query's terms, all kept.
    """
    quoted = ['"' + t.replace('"', '""') + '"' for t in query_terms(user_text, max_terms)]
    if doc_freq is None or not quoted:
        return LexicalQuery(" OR ".join(quoted), len(quoted))
    counts = {q: doc_freq(q) for q in quoted}
    present = sorted((q for q in quoted if counts[q] > 0), key=lambda q: counts[q])
    kept: list[str] = []
    spent = 0
    for q in present:
        if kept and spent + counts[q] > budget:
            break
        kept.append(q)
        spent += counts[q]
    chosen = set(kept)
    in_order = [q for q in quoted if q in chosen]  # the user's order: easier to read in logs, same result
    return LexicalQuery(" OR ".join(in_order), len(present), tuple(q for q in quoted if q not in chosen))


def bm25_from_fts5(rank: float) -> float:
    """FTS5's bm25() and `rank` are negated BM25 (smaller is better); this is the usual positive score."""
    return max(0.0, -rank)


@dataclass(frozen=True, slots=True)
class Fusion:
    weight: float = 0.3  # share of the lexical part in the score
    half: float = 3.0  # BM25 per query term at which the lexical part is 0.5
    floor: float = 0.1  # cosine at and below which the semantic part is 0

    def __post_init__(self) -> None:
        if not (0.0 <= self.weight <= 1.0 and self.half > 0.0 and -1.0 <= self.floor < 1.0):
            raise ValueError(f"bad fusion parameters: {self}")

    def lexical(self, bm25: float, n_terms: int) -> float:
        b = max(0.0, bm25)
        return b / (b + self.half * max(1, n_terms))

    def semantic(self, cosine: float) -> float:
        return min(1.0, max(0.0, (cosine - self.floor) / (1.0 - self.floor)))

    def score(self, bm25: float, cosine: float, n_terms: int) -> float:
        return self.weight * self.lexical(bm25, n_terms) + (1.0 - self.weight) * self.semantic(cosine)

    def scores(self, bm25: npt.NDArray[np.floating], cosine: npt.NDArray[np.floating],
               n_terms: int) -> npt.NDArray[np.float64]:
        """`score` over arrays (the benchmark's tuning loop; a store fusing many candidates at once)."""
        b = np.maximum(np.asarray(bm25, dtype=np.float64), 0.0)
        lex = b / (b + self.half * max(1, n_terms))
        sem = np.clip((np.asarray(cosine, dtype=np.float64) - self.floor) / (1.0 - self.floor), 0.0, 1.0)
        out: npt.NDArray[np.float64] = self.weight * lex + (1.0 - self.weight) * sem
        return out


# Tuned by benchmarks/retrieval.py: a grid over weight/half/floor on the tune half of its labelled queries, scored
# by nDCG@10 averaged over the full lexical query and the budget-pruned one (as at 100k chunks); figures in its
# RESULT line are on the other half.
DEFAULT_FUSION = Fusion()


def cosines(query: npt.NDArray[np.float32], matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Cosine of one unit query vector with every unit row of matrix (a dot product, as both are normalised)."""
    out: npt.NDArray[np.float32] = matrix @ query.astype(np.float32, copy=False)
    return out


def top_k(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
    """Indices of the k highest scores, best first; O(n) selection, then a sort of only those k."""
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.intp)
    part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    return part[np.argsort(-scores[part], kind="stable")]


@dataclass(frozen=True, slots=True)
class Hit(Generic[K]):
    key: K  # whatever identifies the chunk for the caller: a rowid, (file_id, chunk index)...
    score: float  # fused, in [0, 1]
    bm25: float = 0.0
    cosine: float = 0.0


def fuse(bm25: Mapping[K, float], cosine: Mapping[K, float], n_terms: int,
         fusion: Fusion = DEFAULT_FUSION) -> list[Hit[K]]:
    """Hits for the union of both candidate sets, best first. A key missing from `bm25` has lexical 0; one
    missing from `cosine` is taken as cosine 0 (the store should give every candidate its cosine: it has them all).
    """
    keys = list(dict.fromkeys([*bm25, *cosine]))
    hits = [Hit(k, fusion.score(bm25.get(k, 0.0), cosine.get(k, 0.0), n_terms), bm25.get(k, 0.0),
                cosine.get(k, 0.0)) for k in keys]
    hits.sort(key=lambda h: -h.score)  # stable: ties keep BM25 order, then cosine order
    return hits


def hybrid_search(cosine: npt.NDArray[np.floating], bm25: Mapping[int, float], n_terms: int, k: int, *,
                  fusion: Fusion = DEFAULT_FUSION, allowed: npt.NDArray[np.bool_] | None = None) -> list[Hit[int]]:
    """The k best chunks by fused score, without fusing every chunk: exact given what FTS5 returned.

    cosine holds every chunk's cosine (row i = chunk i); bm25 maps row -> BM25 for the FTS top-N (rows not in it
    count as lexical 0, as everywhere). A row outside bm25 scores (1 - weight) · semantic(cosine), which rises
    with cosine, so the best of them are the cosine top k: the union of those and the FTS rows holds the answer.
    That replaces a fusion and a sort over all n chunks with an O(n) selection. `allowed` (a mask, e.g. from
    attribute filters) removes rows before the cut, so a filtered-out chunk never takes a place in the top k.
    """
    cos = np.asarray(cosine, dtype=np.float32)
    if allowed is not None:
        cos = np.where(allowed, cos, np.float32(-np.inf))
    rows = {int(i) for i in top_k(cos, k) if np.isfinite(cos[i])}
    rows.update(r for r in bm25 if allowed is None or allowed[r])
    hits = [Hit(r, fusion.score(bm25.get(r, 0.0), float(cos[r]), n_terms), bm25.get(r, 0.0), float(cos[r]))
            for r in sorted(rows)]
    hits.sort(key=lambda h: -h.score)
    return hits[:max(0, k)]


def merge(results: Iterable[Iterable[Hit[K]]], max_num_results: int, score_threshold: float = 0.0) -> list[Hit[K]]:
    """Hits from several searches (one per vector store) ranked together, cut to max_num_results. Scores are
    absolute, so no renormalisation is needed; a hit below score_threshold is dropped, as the API says."""
    pooled = [h for hits in results for h in hits if h.score >= score_threshold]
    pooled.sort(key=lambda h: -h.score)
    return pooled[:max(0, max_num_results)]


def rrf(ranks: Iterable[int | None], k: float = 60.0) -> float:
    """Reciprocal-rank fusion of 1-based ranks (None: absent from that list), scaled so rank 1 everywhere is 1.
    Kept for the benchmark's comparison; not what DEFAULT_FUSION uses (see the module docstring)."""
    ranks = list(ranks)
    if not ranks:
        return 0.0
    return sum(1.0 / (k + r) for r in ranks if r is not None) / (len(ranks) / (k + 1.0))
