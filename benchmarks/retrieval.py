"""File search's retrieval core: ranking quality of BM25, embeddings and the hybrid; indexing throughput; search
latency at 1k, 10k and 100k chunks.

Corpus: the Python language reference as CPython ships it for `help()` (pydoc_data.topics: 79 topics, 465 KB of
text), one file per topic. Nothing is downloaded.

Labels (an inverse cloze task, Lee et al. 2019): from each topic, up to --per-topic sentences are drawn, evenly
spaced among its eligible ones (prose, not code or grammar: 8-40 words, ends with ".", mostly alphabetic words, not
a "Changed in version" note). Each drawn sentence is REMOVED from the indexed text, so no query is an exact copy
of anything in the index: the system must find the context a sentence came from. Two queries per sentence:

  sentence  the sentence itself
  keywords  its first 5 content words (stopwords and words under 3 letters dropped), as a user types a search

Relevance, graded: 2 for the chunk(s) whose span holds the place the sentence was cut from (its context), 1 for
the other chunks of the same topic, 0 elsewhere. Metrics: nDCG@10 (gain 2^rel - 1, ideal from all graded chunks
of the topic) and recall@5 (the share of grade-2 chunks in the top 5). Queries are split in halves by a CRC of the
sentence: fusion parameters are tuned on the tune half (grid search on mean nDCG@10) and every figure in the
RESULT line is on the test half. `cal_auc` says whether one score_threshold means the same across queries: over
the pooled top-10 hits of all test queries, the probability that a relevant hit (grade >= 1) outscores an
irrelevant one. RRF (k=60, scaled to [0, 1]) is there for comparison.

Methods: the store's own design. BM25 from a real SQLite FTS5 table (tokenize='porter unicode61', external
content, the same schema and query as store/vector_stores.py) in a temp file, top --candidates by bm25(); cosine
over the numpy matrix of WordLlama embeddings; the hybrid is ranking.Fusion over both. `pruned` is the hybrid with
ranking.lexical_query's postings budget scaled to this corpus as it bites at 100k chunks (budget/100k of the
chunk count), to show what the budget costs in quality.

Indexing throughput: extract + chunk (auto, 800/400) + embed of the whole corpus as .txt, .html, .docx and .pdf
files made here, reported as MB of extracted text per second (the machine's cores: 2 here; the tokenizer uses
both, numpy one). Embedding goes through embeddings.embed_chunks (pooling the token ids the chunker already has);
`index_text_path_mbps` is the same with embed(texts), which tokenizes every chunk again: the baseline.

Search latency at --sizes chunks: chunks are ~800-token windows of the corpus at random offsets (so term
frequencies keep the corpus's skew); their vectors are random unit vectors (a matrix product costs the same
whatever the numbers). Per query, timed end to end: embed the query, count each term's matches (cached per
term, as a store would until its index changes), the FTS5 query (the store's, over all stores), cosine over the
matrix, fusion and top-k. The test-half queries, each once after a warm-up pass; p50/p99. `full_p50` is the same
without the postings budget (every term scored), the baseline; `budget10000_p50` with another budget (see
--compare-budgets). The modes take turns query by query, so load from other processes hits them alike. The log
also shows, outside the total, the same MATCH with a JOIN on chunks filtering by store, as the store did before
(fts_join).

main() gathers the parts' typed results in a RetrievalResult and prints its line: RESULT retrieval ...
"""

from __future__ import annotations

import argparse
import io
import math
import os
import pydoc_data.topics
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from offline_assistants.bench.common import fmt, log, machine
from offline_assistants.bench.measure import OtherLoad, percentile, wait_quiet
from offline_assistants.retrieval.chunking import Chunk, chunk
from offline_assistants.retrieval.embeddings import WordLlamaEmbedder, embed_chunks
from offline_assistants.retrieval.extract import extract
from offline_assistants.retrieval.ranking import (
    DEFAULT_FUSION,
    FTS5_TOKENIZE,
    POSTINGS_BUDGET,
    STOPWORDS,
    Fusion,
    cosines,
    hybrid_search,
    lexical_query,
    rrf,
    top_k,
)

SCHEMA = f"""
CREATE TABLE chunks (pk INTEGER PRIMARY KEY AUTOINCREMENT, vector_store_id TEXT NOT NULL, file_id TEXT NOT NULL,
                     seq INTEGER NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='pk', tokenize='{FTS5_TOKENIZE}');
"""
# store/vector_stores.py's BM25 query, word for word.
BM25_SQL = ("SELECT rowid AS pk, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?")
# What it was before (filtering by store in SQL): timed for information as fts_join.
BM25_JOIN_SQL = ("SELECT c.pk AS pk, -bm25(chunks_fts) AS score FROM chunks_fts "
                 "JOIN chunks c ON c.pk = chunks_fts.rowid WHERE chunks_fts MATCH ? AND c.vector_store_id IN (?) "
                 "ORDER BY bm25(chunks_fts) LIMIT ?")
COUNT_SQL = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
STORE = "vs_bench"

# --- the labelled set -----------------------------------------------------------------------------------------

# Questions no Python reference answers (some share words with it: "return", "class", "print", "list", "yield"),
# for whether a score threshold can tell "found" from "nothing here": the best hit of these should score low.
OFF_TOPIC = [
    "What is a good recipe for banana bread without eggs?", "How long should I boil an egg for a soft yolk?",
    "Which train goes from Lyon to Geneva on Sunday mornings?", "Can I return a flight ticket bought online?",
    "What time does the yoga class start on Thursdays?", "How do I print my boarding pass at the airport?",
    "Best hiking trails near the lake with a view of the mountains", "How much rain fell in Seattle last March?",
    "Tips for growing tomatoes on a small balcony", "What is the capital city of Australia?",
    "How do I remove a red wine stain from a carpet?", "Who won the football world cup in 1998?",
    "What vaccines does a puppy need in its first year?", "How can I lower my electricity bill in winter?",
    "Shopping list for a birthday party with twenty children", "Why do cats purr when they are happy?",
    "How many calories are in a bowl of oatmeal with honey?", "What is the yield of a savings bond after ten years?",
    "How do I change a flat tyre on a bicycle?", "When is the best season to visit Japan for cherry blossoms?",
    "How to write a polite letter declining a job offer", "Symptoms of a cold compared with the flu",
    "What should I pack for a week of camping in the desert?", "How do I tune the strings of an acoustic guitar?",
    "Which houseplants survive in a dark room?", "What is the difference between baking soda and baking powder?",
    "How do I knit a scarf for a beginner?", "Why is the sky red at sunset?",
    "How to train for a first marathon in six months", "What are the rules of chess castling?",
    "Where can I recycle old batteries in my town?", "How often should I water a cactus?",
    "What is a fair price for a used car with high mileage?", "How do I make cold brew coffee at home?",
    "Songs to play at a wedding reception", "How to clean a cast iron pan after cooking",
    "What is the tallest mountain in Africa?", "How do I apply for a passport renewal by mail?",
    "Exercises for lower back pain after sitting all day", "Which wine goes well with grilled salmon?",
]

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'*(])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


@dataclass(frozen=True)
class Ranking:
    """One ranking system's quality on the test half."""

    name: str  # bm25, emb, hybrid, tuned, rrf, pruned
    ndcg10: float
    recall5: float


@dataclass(frozen=True)
class Quality:
    chunks: int
    queries: int  # test half
    tuned: Fusion  # the grid's best fusion on the tune half
    rankings: tuple[Ranking, ...]
    cal_auc: dict[str, float]  # pooled top-10 AUC: does one threshold mean the same across queries (hybrid, rrf, cos)
    found_auc: dict[str, float]  # best hit of on-topic vs off-topic queries (hybrid, rrf, cos)

    def ndcg(self, name: str) -> float:
        return next(r.ndcg10 for r in self.rankings if r.name == name)


@dataclass(frozen=True)
class Indexing:
    mbps: dict[str, float]  # MB of extracted text per second, by file format
    overall_mbps: float
    text_path_mbps: float  # the baseline: embedding the chunk texts again


@dataclass(frozen=True)
class Latency:
    chunks: int
    mode: str  # budget (shipped), budgetN, full (no budget: the baseline)
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class RetrievalResult:
    quality: Quality | None
    indexing: Indexing | None
    latency: tuple[Latency, ...]
    cores: str

    def p50(self, chunks: int, mode: str = "budget") -> float | None:
        return next((x.p50_ms for x in self.latency if x.chunks == chunks and x.mode == mode), None)

    def line(self) -> str:
        fields: dict[str, str] = {}
        if q := self.quality:
            fields |= {"chunks": str(q.chunks), "queries": str(q.queries),
                       "tuned": f"{q.tuned.weight}/{q.tuned.half}/{q.tuned.floor}"}
            for r in q.rankings:
                fields |= {f"ndcg_{r.name}": f"{r.ndcg10:.3f}", f"r5_{r.name}": f"{r.recall5:.3f}"}
            fields |= {f"cal_auc_{k}": f"{v:.3f}" for k, v in q.cal_auc.items()}
            fields |= {f"found_auc_{k}": f"{v:.3f}" for k, v in q.found_auc.items()}
        if i := self.indexing:
            fields |= {f"index_{ext}_mbps": fmt(v) for ext, v in i.mbps.items()}
            fields |= {"index_mbps": fmt(i.overall_mbps), "index_text_path_mbps": fmt(i.text_path_mbps)}
        for x in self.latency:
            key = "" if x.mode == "budget" else f"{x.mode}_"
            fields |= {f"{key}p50_{x.chunks // 1000}k": f"{x.p50_ms:.2f}",
                       f"{key}p99_{x.chunks // 1000}k": f"{x.p99_ms:.2f}"}
        sizes = sorted({x.chunks for x in self.latency})
        lo, hi = (self.p50(sizes[0]), self.p50(sizes[-1])) if len(sizes) > 1 else (None, None)
        if lo and hi:
            fields["p50_ratio"] = f"{hi / lo:.2f}"
        if q:
            for base in ("bm25", "emb"):
                fields[f"hybrid_vs_{base}"] = f"{q.ndcg('hybrid') / max(1e-9, q.ndcg(base)):.2f}"
        full, ours = self.p50(100_000, "full"), self.p50(100_000)
        if full and ours:
            fields["budget_speedup_100k"] = f"{full / ours:.2f}"
        fields["cores"] = self.cores
        return "RESULT retrieval " + " ".join(f"{k}={v}" for k, v in fields.items())


@dataclass
class Query:
    text: str
    kind: str  # "sentence" | "keywords"
    topic: str
    hole: int  # where the sentence was cut from, in the topic's indexed text
    half: str  # "tune" | "test"
    grades: dict[int, int] = field(default_factory=dict)  # chunk row -> relevance (1 or 2)


def _eligible(sentence: str) -> bool:
    words = sentence.split()
    if not 8 <= len(words) <= 40 or not sentence.endswith("."):
        return False
    if sentence.startswith(("Changed in version", "Added in version", "Deprecated", "See also", "Note:")):
        return False
    alpha = sum(1 for w in words if _WORD.fullmatch(w.strip(".,;:()\"'“”")))
    return alpha >= 0.7 * len(words)


def _prose_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of the sentences of text's prose paragraphs: no indented (code, grammar) or bulleted lines."""
    spans = []
    for para in re.finditer(r"(?:^(?![ \t*\-]).+\n?)+", text, re.MULTILINE):
        block = para.group(0)
        if "::=" in block or ">>>" in block:
            continue
        pos = 0
        for piece in _SENTENCE_SPLIT.split(block):
            at = block.index(piece, pos)
            pos = at + len(piece)
            s = " ".join(piece.split())
            if _eligible(s):
                spans.append((para.start() + at, para.start() + at + len(piece.rstrip())))
    return spans


def keywords(sentence: str, n: int = 5) -> str:
    out: list[str] = []
    for w in _WORD.findall(sentence):
        w = w.lower().strip("'’-")
        if len(w) >= 3 and w not in STOPWORDS and w not in out:
            out.append(w)
    return " ".join(out[:n])


def build_labelled(per_topic: int) -> tuple[dict[str, str], list[Query]]:
    """Indexed texts (query sentences cut out) per topic, and the queries (grades filled in later)."""
    texts: dict[str, str] = {}
    queries: list[Query] = []
    for topic, text in sorted(pydoc_data.topics.topics.items()):
        spans = _prose_sentences(text)
        k = min(per_topic, len(spans))
        picked = sorted({spans[int((i + 0.5) * len(spans) / k)] for i in range(k)}) if k else []
        out, pos, holes = [], 0, []
        for a, b in picked:
            out.append(text[pos:a])
            holes.append(sum(len(p) for p in out))
            pos = b
        out.append(text[pos:])
        texts[topic] = "".join(out)
        for (a, b), hole in zip(picked, holes, strict=True):
            sentence = " ".join(text[a:b].split())
            half = "tune" if zlib.crc32(sentence.encode()) % 2 == 0 else "test"
            queries.append(Query(sentence, "sentence", topic, hole, half))
            queries.append(Query(keywords(sentence), "keywords", topic, hole, half))
    return texts, queries


def grade(queries: list[Query], rows: list[tuple[str, Chunk]]) -> None:
    by_topic: dict[str, list[tuple[int, Chunk]]] = {}
    for i, (topic, c) in enumerate(rows):
        by_topic.setdefault(topic, []).append((i, c))
    for q in queries:
        mine = by_topic[q.topic]
        context = [i for i, c in mine if c.start <= q.hole <= c.end]
        if not context:  # the hole fell in whitespace between two chunks: both neighbours are its context
            before = [i for i, c in mine if c.end <= q.hole]
            after = [i for i, c in mine if c.start >= q.hole]
            context = before[-1:] + after[:1]
        q.grades = {i: 1 for i, _ in mine}
        q.grades.update(dict.fromkeys(context, 2))


# --- metrics --------------------------------------------------------------------------------------------------


def ndcg10(ranked: Sequence[int], grades: dict[int, int]) -> float:
    dcg = sum((2 ** grades.get(r, 0) - 1) / math.log2(i + 2) for i, r in enumerate(ranked[:10]))
    ideal = sorted(grades.values(), reverse=True)[:10]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall5(ranked: Sequence[int], grades: dict[int, int]) -> float:
    context = [r for r, g in grades.items() if g == 2]
    return sum(1 for r in ranked[:5] if grades.get(r) == 2) / len(context)


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a random positive outscores a random negative), ties half: the Mann-Whitney statistic."""
    if not pos or not neg:
        return float("nan")
    scores = np.array(pos + neg)
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="stable")
    ranks[order] = np.arange(1, len(scores) + 1)
    for v in np.unique(scores):  # average ranks over ties
        tie = scores == v
        ranks[tie] = ranks[tie].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# --- the quality run ------------------------------------------------------------------------------------------


def open_index(path: Path, texts: Sequence[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    with db:
        db.executemany("INSERT INTO chunks (pk, vector_store_id, file_id, seq, text, embedding) VALUES (?,?,?,?,?,?)",
                       [(i + 1, STORE, "file", i, t, b"") for i, t in enumerate(texts)])
        db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')")
    return db


def bm25_scores(db: sqlite3.Connection, match: str, n: int, candidates: int) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    if match:
        for pk, score in db.execute(BM25_SQL, (match, candidates)):
            out[pk - 1] = score
    return out


def doc_freq_of(db: sqlite3.Connection) -> Callable[[str], int]:
    cache: dict[str, int] = {}

    def df(term: str) -> int:
        if term not in cache:
            cache[term] = int(db.execute(COUNT_SQL, (term,)).fetchone()[0])
        return cache[term]

    return df


def ranking_of(scores: npt.NDArray[np.floating], matched: npt.NDArray[np.bool_] | None = None) -> list[int]:
    if matched is not None:  # BM25 alone ranks only what it matched
        idx = np.flatnonzero(matched)
        return [int(i) for i in idx[np.argsort(-scores[idx], kind="stable")][:10]]
    return [int(i) for i in top_k(scores, 10)]


def evaluate(qs: list[Query], rankings: list[list[int]]) -> tuple[float, float]:
    return (statistics.fmean(ndcg10(r, q.grades) for q, r in zip(qs, rankings, strict=True)),
            statistics.fmean(recall5(r, q.grades) for q, r in zip(qs, rankings, strict=True)))


def quality(args: argparse.Namespace, embedder: WordLlamaEmbedder, tmp: Path) -> Quality:
    texts, queries = build_labelled(args.per_topic)
    rows = [(topic, c) for topic, text in texts.items() for c in chunk(text)]
    grade(queries, rows)
    n = len(rows)
    log(f"quality: {len(texts)} topics, {n} chunks, {len(queries)} queries "
        f"({sum(q.half == 'test' for q in queries)} test)")
    db = open_index(tmp / "quality.db", [c.text for _, c in rows])
    matrix = embedder.embed([c.text for _, c in rows])
    qvecs = embedder.embed([q.text for q in queries])
    df = doc_freq_of(db)
    pruned_budget = max(1, round(args.budget * n / 100_000))
    bm25, cos, nterms, bm25_pruned, nterms_pruned = [], [], [], [], []
    for q, v in zip(queries, qvecs, strict=True):
        lq = lexical_query(q.text)
        bm25.append(bm25_scores(db, lq.match, n, args.candidates))
        nterms.append(lq.n_terms)
        lp = lexical_query(q.text, df, budget=pruned_budget)
        bm25_pruned.append(bm25_scores(db, lp.match, n, args.candidates))
        nterms_pruned.append(lp.n_terms)
        cos.append(matrix @ v)

    def fused(fusion: Fusion, idx: list[int], pruned: bool = False) -> list[list[int]]:
        b, t = (bm25_pruned, nterms_pruned) if pruned else (bm25, nterms)
        return [ranking_of(fusion.scores(b[i], cos[i], t[i])) for i in idx]

    def rrf_rank(i: int) -> list[int]:
        lex_rank = {int(r): k + 1 for k, r in enumerate(np.argsort(-bm25[i], kind="stable")) if bm25[i][r] > 0}
        sem_rank = {int(r): k + 1 for k, r in enumerate(np.argsort(-cos[i], kind="stable"))}
        s = np.array([rrf([lex_rank.get(r), sem_rank[r]]) for r in range(n)])
        return ranking_of(s)

    tune = [i for i, q in enumerate(queries) if q.half == "tune"]
    test = [i for i, q in enumerate(queries) if q.half == "test"]
    grid = [Fusion(w / 10, h, f / 10) for w in range(1, 10) for h in (0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
            for f in range(7)]
    tune_q = [queries[i] for i in tune]

    def objective(fu: Fusion) -> float:
        # The shipped fusion must serve small stores (budget never binds) and big ones (it does): both count.
        return (evaluate(tune_q, fused(fu, tune))[0] + evaluate(tune_q, fused(fu, tune, pruned=True))[0]) / 2

    best = max(grid, key=objective)
    log(f"tuned on {len(tune)} queries: weight={best.weight} half={best.half} floor={best.floor} "
        f"(shipped: weight={DEFAULT_FUSION.weight} half={DEFAULT_FUSION.half} floor={DEFAULT_FUSION.floor})")

    test_q = [queries[i] for i in test]
    systems: dict[str, list[list[int]]] = {
        "bm25": [ranking_of(bm25[i], bm25[i] > 0) for i in test],
        "emb": [ranking_of(cos[i]) for i in test],
        "hybrid": fused(DEFAULT_FUSION, test),
        "tuned": fused(best, test),
        "rrf": [rrf_rank(i) for i in test],
        "pruned": fused(DEFAULT_FUSION, test, pruned=True),
    }
    scored: list[Ranking] = []
    for kind in ("all", "sentence", "keywords"):
        sel = [k for k, q in enumerate(test_q) if kind == "all" or q.kind == kind]
        line = []
        for name, rankings in systems.items():
            nd, rc = evaluate([test_q[k] for k in sel], [rankings[k] for k in sel])
            line.append(f"{name} {nd:.3f}/{rc:.3f}")
            if kind == "all":
                scored.append(Ranking(name, nd, rc))
        log(f"test {kind:8} nDCG@10/recall@5: " + ", ".join(line))

    # Does one threshold mean the same for every query? Pool every test query's top 10.
    def pooled_auc(score_of: Callable[[int], npt.NDArray[np.floating]]) -> float:
        pos: list[float] = []
        neg: list[float] = []
        for i in test:
            s = score_of(i)
            for r in top_k(s, 10):
                (pos if queries[i].grades.get(int(r), 0) > 0 else neg).append(float(s[r]))
        return auc(pos, neg)

    def rrf_scores(i: int) -> npt.NDArray[np.float64]:
        lex = {int(r): k + 1 for k, r in enumerate(np.argsort(-bm25[i], kind="stable")) if bm25[i][r] > 0}
        sem = {int(r): k + 1 for k, r in enumerate(np.argsort(-cos[i], kind="stable"))}
        return np.array([rrf([lex.get(r), sem[r]]) for r in range(n)])

    cal_auc = {"hybrid": pooled_auc(lambda i: DEFAULT_FUSION.scores(bm25[i], cos[i], nterms[i])),
               "rrf": pooled_auc(rrf_scores), "cos": pooled_auc(lambda i: cos[i].astype(np.float64))}
    log(f"threshold calibration (pooled AUC): hybrid {cal_auc['hybrid']:.3f}, rrf {cal_auc['rrf']:.3f}, "
        f"cosine {cal_auc['cos']:.3f}")

    # Found vs nothing here: the best hit's score for test queries against off-topic ones.
    off_vecs = embedder.embed(OFF_TOPIC)
    top_on: dict[str, list[float]] = {"hybrid": [], "rrf": [], "cos": []}
    top_off: dict[str, list[float]] = {"hybrid": [], "rrf": [], "cos": []}
    for i in test:
        top_on["hybrid"].append(float(DEFAULT_FUSION.scores(bm25[i], cos[i], nterms[i]).max()))
        top_on["rrf"].append(float(rrf_scores(i).max()))
        top_on["cos"].append(float(cos[i].max()))
    for text, v in zip(OFF_TOPIC, off_vecs, strict=True):
        lq = lexical_query(text)
        b, c = bm25_scores(db, lq.match, n, args.candidates), matrix @ v
        top_off["hybrid"].append(float(DEFAULT_FUSION.scores(b, c, lq.n_terms).max()))
        lex = {int(r): k + 1 for k, r in enumerate(np.argsort(-b, kind="stable")) if b[r] > 0}
        sem = {int(r): k + 1 for k, r in enumerate(np.argsort(-c, kind="stable"))}
        top_off["rrf"].append(max(rrf([lex.get(r), sem[r]]) for r in range(n)))
        top_off["cos"].append(float(c.max()))
    db.close()
    found_auc = {name: auc(top_on[name], top_off[name]) for name in top_on}
    on, off = sorted(top_on["hybrid"]), sorted(top_off["hybrid"])
    log(f"found vs nothing-here (AUC of the best hit's score, {len(test)} test vs {len(OFF_TOPIC)} off-topic): "
        + ", ".join(f"{k} {v:.3f}" for k, v in found_auc.items())
        + f"; hybrid best-hit score: on-topic p10 {percentile(on, 0.1):.3f}, off-topic p90 {percentile(off, 0.9):.3f}")
    return Quality(chunks=n, queries=len(test), tuned=best, rankings=tuple(scored), cal_auc=cal_auc,
                   found_auc=found_auc)


# --- indexing throughput ---------------------------------------------------------------------------------------


def as_html(text: str) -> bytes:
    import html

    paras = "".join(f"<p>{html.escape(p)}</p>\n" for p in text.split("\n\n"))
    return f"<html><head><title>doc</title><style>p{{margin:0}}</style></head><body>{paras}</body></html>".encode()


def as_docx(text: str) -> bytes:
    from xml.sax.saxutils import escape

    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{escape(p)}</w:t></w:r></w:p>" for p in text.split("\n"))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", f'<?xml version="1.0"?><w:document xmlns:w="{w}"><w:body>{body}'
                                        "</w:body></w:document>")
    return out.getvalue()


def as_pdf(text: str, lines_per_page: int = 50) -> bytes:
    lines = [ln[:100] for ln in text.splitlines()] or [""]
    pages = [lines[i:i + lines_per_page] for i in range(0, len(lines), lines_per_page)]
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    kids = []
    for page in pages:
        ops = ["BT /F1 10 Tf 12 TL 50 760 Td"]
        for ln in page:
            s = ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({s}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("cp1252", "replace")
        kids.append(len(objs) + 1)
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objs) + 2} 0 R "
                    "/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>".encode()
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs):
        offsets.append(out.tell())
        out.write(f"{i + 1} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode())
    out.write("".join(f"{o:010d} 00000 n \n" for o in offsets).encode())
    out.write(f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def throughput(embedder: WordLlamaEmbedder, args: argparse.Namespace) -> Indexing:
    topics = [t for _, t in sorted(pydoc_data.topics.topics.items())]
    makers: dict[str, Callable[[str], bytes]] = {
        "txt": lambda t: t.encode(), "html": as_html, "docx": as_docx, "pdf": as_pdf}
    mbps: dict[str, float] = {}
    total_mb = total_s = base_s = 0.0
    for ext, make in makers.items():
        files = [make(t) for t in topics]
        wait_quiet(args.quiet_wait, label=f"index {ext}")
        meter = OtherLoad().start()
        t_ex = t_ch = t_em = t_text = 0.0
        mb = 0.0
        n_chunks = 0
        for i, data in enumerate(files):
            t0 = time.perf_counter()
            text = extract(data, f"topic{i}.{ext}")
            t1 = time.perf_counter()
            chunks = chunk(text)
            t2 = time.perf_counter()
            embed_chunks(embedder, chunks)
            t3 = time.perf_counter()
            embedder.embed([c.text for c in chunks])  # the baseline: tokenize each chunk again
            t_text += time.perf_counter() - t3
            t_ex, t_ch, t_em = t_ex + t1 - t0, t_ch + t2 - t1, t_em + t3 - t2
            mb += len(text.encode()) / 1e6
            n_chunks += len(chunks)
        others = meter.stop()
        secs = t_ex + t_ch + t_em
        total_mb, total_s = total_mb + mb, total_s + secs
        base_s += secs - t_em + t_text
        mbps[ext] = mb / secs
        log(f"index {ext:4}: {mb:.2f} MB text, {n_chunks} chunks, {mb / secs:.2f} MB/s "
            f"(extract {t_ex:.2f}s, chunk {t_ch:.2f}s, embed {t_em:.2f}s; embedding the texts instead: "
            f"{t_text:.2f}s; others used {others:.2f} cores)")
    return Indexing(mbps=mbps, overall_mbps=total_mb / total_s, text_path_mbps=total_mb / base_s)


# --- search latency --------------------------------------------------------------------------------------------


def windows(n: int, seed: int, size: int = 3200) -> list[str]:
    topics = [t for _, t in sorted(pydoc_data.topics.topics.items())]
    weights = [len(t) for t in topics]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t = rng.choices(topics, weights)[0]
        if len(t) <= size:
            out.append(t)
            continue
        a = t.find(" ", rng.randrange(0, len(t) - size)) + 1
        out.append(t[a:t.rfind(" ", a, a + size)])
    return out


def latency(embedder: WordLlamaEmbedder, args: argparse.Namespace, tmp: Path) -> tuple[Latency, ...]:
    _, queries = build_labelled(args.per_topic)
    qtexts = [q.text for q in queries if q.half == "test"]
    out: list[Latency] = []
    for size in args.sizes:
        t0 = time.perf_counter()
        db = open_index(tmp / f"latency{size}.db", windows(size, seed=size))
        rng = np.random.default_rng(size)
        matrix = rng.standard_normal((size, embedder.dim), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        log(f"latency {size}: index built in {time.perf_counter() - t0:.1f}s")

        def search(text: str, df: Callable[[str], int] | None, budget: int | None, parts: dict[str, list[float]],
                   db: sqlite3.Connection = db, matrix: npt.NDArray[np.float32] = matrix) -> None:
            t = time.perf_counter()
            vec = embedder.embed([text])[0]
            t_emb = time.perf_counter()
            lq = lexical_query(text, df, budget=budget or 0)
            t_df = time.perf_counter()
            bm25 = dict(db.execute(BM25_SQL, (lq.match, args.candidates)).fetchall()) if lq.match else {}
            t_fts = time.perf_counter()
            cos = cosines(vec, matrix)
            t_cos = time.perf_counter()
            hybrid_search(cos, {pk - 1: score for pk, score in bm25.items()}, lq.n_terms, 20)
            t_end = time.perf_counter()
            if lq.match:  # for information, not in the total: the same MATCH with a JOIN filtering by store
                db.execute(BM25_JOIN_SQL, (lq.match, STORE, args.candidates)).fetchall()
                parts.setdefault("fts_join", []).append((time.perf_counter() - t_end) * 1000)
            for k, v in (("embed", t_emb - t), ("df", t_df - t_emb), ("fts", t_fts - t_df), ("cos", t_cos - t_fts),
                         ("fuse", t_end - t_cos), ("total", t_end - t)):
                parts.setdefault(k, []).append(v * 1000)

        # Modes take turns query by query, so a shared machine's load falls on all of them alike.
        modes: list[tuple[str, int | None]] = [("budget", args.budget)]
        modes += [(f"budget{b}", b) for b in args.compare_budgets]
        if not args.no_baseline:
            modes.append(("full", None))
        df = doc_freq_of(db)  # one cache: the counts do not depend on the budget
        warm: dict[str, list[float]] = {}
        for text in qtexts[: min(20, len(qtexts))]:  # warm the page cache and the plan, not the df cache
            search(text, None, None, warm)
        wait_quiet(args.quiet_wait, label=f"latency {size}")
        meter = OtherLoad().start()
        parts: dict[str, dict[str, list[float]]] = {m: {} for m, _ in modes}
        for text in qtexts:
            for mode, budget in modes:
                search(text, df if budget is not None else None, budget, parts[mode])
        others = meter.stop()
        for mode, _ in modes:
            tot = parts[mode]["total"]
            p50, p99 = statistics.median(tot), percentile(tot, 0.99)
            comp = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in parts[mode].items() if k != "total")
            log(f"latency {size:>6} {mode:11}: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({comp} ms p50)")
            out.append(Latency(size, mode, p50, p99))
        log(f"latency {size}: others used {others:.2f} cores during the measurement")
        db.close()
        os.remove(tmp / f"latency{size}.db")
    return tuple(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-topic", type=int, default=6, help="query sentences drawn per topic (default 6)")
    ap.add_argument("--candidates", type=int, default=1000, help="BM25 rows per query, as engine/search.py")
    ap.add_argument("--budget", type=int, default=POSTINGS_BUDGET,
                    help="rows the BM25 side may score per query (ranking.POSTINGS_BUDGET, default %(default)s)")
    ap.add_argument("--compare-budgets", type=lambda s: [int(x) for x in s.split(",") if x], default=[10_000],
                    help="other budgets timed alongside, for comparison (default 10000; '' for none)")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10_000, 100_000])
    ap.add_argument("--no-baseline", action="store_true", help="skip the unbudgeted latency baseline (slow at 100k)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: quality, index, latency")
    ap.add_argument("--quiet-wait", type=float, default=20.0, help="wait up to this long for an idle machine")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    info = machine()
    log("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    t0 = time.perf_counter()
    embedder = WordLlamaEmbedder()
    log(f"embedder {embedder.name} loaded in {time.perf_counter() - t0:.2f}s")
    with tempfile.TemporaryDirectory(prefix="oa-retrieval-") as d:
        tmp = Path(d)
        result = RetrievalResult(
            quality=quality(args, embedder, tmp) if "quality" not in skip else None,
            indexing=throughput(embedder, args) if "index" not in skip else None,
            latency=latency(embedder, args, tmp) if "latency" not in skip else (),
            cores=info.get("cores", "?"))
    print(result.line())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
