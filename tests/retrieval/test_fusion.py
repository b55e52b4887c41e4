"""retrieval/ranking.py: FTS5 queries that are safe for any user text (checked on a real FTS5 table), the fused
score's bounds and monotonicity, top-k selection and merging across stores."""

from __future__ import annotations

import random
import sqlite3

import numpy as np
import pytest

from offline_assistants.retrieval.ranking import (
    DEFAULT_FUSION,
    FTS5_TOKENIZE,
    Fusion,
    Hit,
    bm25_from_fts5,
    cosines,
    fts_query,
    fuse,
    hybrid_search,
    lexical_query,
    merge,
    query_terms,
    rrf,
    top_k,
)

DOCS = [
    "Indexing a vector store splits each file into chunks.",
    "The os.path.join function joins path components.",
    "NEAR the end of the AND gate, OR logic applies.",
    "Café crème is a coffee drink.",
    "snake_case names are common in Python code.",
]

HOSTILE = [
    '"AND OR NEAR( * ^ -',
    "AND OR NOT",
    '" OR 1=1 --',
    "col:term",
    "NEAR(a b, 5)",
    "a* ^b -c +d",
    '""""',
    "{a b}: c",
    "x' OR 'y",
    "\x00\x01 control \u202e chars",
    "( ( ( unbalanced",
    "text); DROP TABLE chunks; --",
]


@pytest.fixture
def fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE chunks USING fts5(text, tokenize = '{FTS5_TOKENIZE}')")
    db.executemany("INSERT INTO chunks(rowid, text) VALUES (?, ?)", list(enumerate(DOCS, start=1)))
    return db


def search(db: sqlite3.Connection, user_text: str) -> list[tuple[int, float]]:
    q = fts_query(user_text)
    if not q:
        return []
    rows = db.execute("SELECT rowid, bm25(chunks) FROM chunks WHERE chunks MATCH ? ORDER BY rank", (q,)).fetchall()
    return [(r, bm25_from_fts5(s)) for r, s in rows]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_breaks_the_match(fts: sqlite3.Connection, text: str) -> None:
    search(fts, text)  # no sqlite3.OperationalError: the query is always well-formed


def test_operators_are_searched_as_words(fts: sqlite3.Connection) -> None:
    assert fts_query('"AND OR NEAR( * ^ -') == '"NEAR"'  # and/or are stopwords; NEAR is a plain quoted term
    assert [r for r, _ in search(fts, "NEAR gate")] == [3]
    assert fts_query("AND OR NOT") == '"AND" OR "OR" OR "NOT"'  # only stopwords: they are kept
    assert [r for r, _ in search(fts, "AND OR NOT")] == [3]


def test_empty_and_punctuation_only_queries() -> None:
    for text in ["", "   ", "?!", "*** ^^^ ---", '"""', "()"]:
        assert fts_query(text) == ""
        assert query_terms(text) == []


def test_terms_are_distinct_case_folded_and_capped() -> None:
    assert query_terms("Python python PYTHON code") == ["Python", "code"]
    assert len(query_terms(" ".join(f"word{i}" for i in range(100)))) == 32


def test_compound_terms_are_phrases_and_stemming_applies(fts: sqlite3.Connection) -> None:
    assert fts_query("os.path.join") == '"os.path.join"'
    assert [r for r, _ in search(fts, "how do I use os.path.join?")] == [2]
    assert [r for r, _ in search(fts, "snake_case")] == [5]
    assert [r for r, _ in search(fts, "indexed vectors")] == [1]  # porter: indexed ~ indexing, vectors ~ vector
    assert [r for r, _ in search(fts, "cafe creme")] == [4]  # diacritics folded


def test_or_semantics_rank_by_bm25(fts: sqlite3.Connection) -> None:
    hits = search(fts, "coffee python unrelatedword")
    assert {r for r, _ in hits} == {4, 5}
    assert all(score > 0 for _, score in hits)


def test_fused_score_is_bounded_and_monotonic() -> None:
    rng = random.Random(0)
    for fusion in [DEFAULT_FUSION, Fusion(0.0, 1.0, 0.0), Fusion(1.0, 0.5, 0.5), Fusion(0.3, 10.0, -1.0)]:
        for _ in range(2000):
            b, c, n = rng.uniform(0, 60), rng.uniform(-1, 1), rng.randint(1, 32)
            s = fusion.score(b, c, n)
            assert 0.0 <= s <= 1.0
            assert fusion.score(b + rng.uniform(0, 5), c, n) >= s
            assert fusion.score(b, min(1.0, c + rng.uniform(0, 0.3)), n) >= s
        assert fusion.score(0.0, -1.0, 3) == 0.0
        assert fusion.score(1e12, 1.0, 1) == pytest.approx(1.0)
        assert fusion.score(-5.0, -1.0, 1) == 0.0  # a negative (raw FTS5) score is no evidence, not an error


def test_array_form_agrees_with_the_scalar_form() -> None:
    rng = np.random.default_rng(1)
    b, c = rng.uniform(0, 40, 500), rng.uniform(-1, 1, 500)
    arr = DEFAULT_FUSION.scores(b, c, 4)
    assert np.allclose(arr, [DEFAULT_FUSION.score(x, y, 4) for x, y in zip(b, c, strict=True)])
    assert ((arr >= 0) & (arr <= 1)).all()


def test_bad_fusion_parameters() -> None:
    for bad in [{"weight": 1.5}, {"half": 0.0}, {"floor": 1.0}]:
        with pytest.raises(ValueError):
            Fusion(**bad)  # type: ignore[arg-type]


def test_cosines_and_top_k() -> None:
    rng = np.random.default_rng(2)
    m = rng.normal(size=(1000, 16)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    q = m[17]
    sims = cosines(q, m)
    assert sims.dtype == np.float32 and sims[17] == pytest.approx(1.0)
    top = top_k(sims, 10)
    assert top[0] == 17 and list(top) == list(np.argsort(-sims)[:10])
    assert len(top_k(sims, 5000)) == 1000 and len(top_k(sims, 0)) == 0 and len(top_k(sims[:0], 3)) == 0


def test_fuse_covers_both_candidate_sets() -> None:
    hits = fuse({"a": 12.0, "b": 3.0}, {"b": 0.9, "c": 0.8, "a": 0.2}, n_terms=2)
    assert [h.key for h in hits][0] in {"a", "b"} and {h.key for h in hits} == {"a", "b", "c"}
    assert all(0 <= h.score <= 1 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert next(h for h in hits if h.key == "c").bm25 == 0.0


def test_merge_across_stores_threshold_and_cut() -> None:
    store1 = [Hit("s1-a", 0.9), Hit("s1-b", 0.4)]
    store2 = [Hit("s2-a", 0.7), Hit("s2-b", 0.1)]
    assert [h.key for h in merge([store1, store2], 3)] == ["s1-a", "s2-a", "s1-b"]
    assert [h.key for h in merge([store1, store2], 10, score_threshold=0.5)] == ["s1-a", "s2-a"]
    assert merge([store1], 0) == []


def test_rrf_is_scaled_to_one() -> None:
    assert rrf([1, 1]) == pytest.approx(1.0)
    assert rrf([1, None]) == pytest.approx(0.5)
    assert 0 < rrf([5, 90]) < rrf([1, 90]) < 1
    assert rrf([]) == 0.0


def test_lexical_query_without_counts_is_fts_query() -> None:
    lq = lexical_query("How does the for statement assign targets?")
    assert lq.match == fts_query("How does the for statement assign targets?")
    assert lq.n_terms == 3 and lq.dropped == ()
    assert lexical_query("?!").match == "" and lexical_query("?!").n_terms == 0


def test_lexical_query_keeps_the_rarest_terms_within_the_budget() -> None:
    counts = {'"common"': 900, '"rare"': 10, '"middling"': 300, '"absent"': 0, '"usual"': 600}
    lq = lexical_query("common rare middling absent usual", counts.__getitem__, budget=900)
    assert lq.match == '"rare" OR "middling"'  # 10 + 300 fit; + 600 would not
    assert lq.n_terms == 4  # dropped-as-common terms still count; the absent one does not
    assert set(lq.dropped) == {'"common"', '"absent"', '"usual"'}
    # the rarest present term is kept even over the budget
    only_common = lexical_query("common usual", counts.__getitem__, budget=100)
    assert only_common.match == '"usual"' and only_common.n_terms == 2
    assert lexical_query("absent", counts.__getitem__).match == ""


def test_lexical_query_on_a_real_table(fts: sqlite3.Connection) -> None:
    def df(term: str) -> int:
        return int(fts.execute("SELECT count(*) FROM chunks WHERE chunks MATCH ?", (term,)).fetchone()[0])

    lq = lexical_query('coffee python "AND OR NEAR( * ^ - nosuchword', df, budget=1)
    assert lq.match in ('"coffee"', '"python"') and lq.n_terms == 3
    assert fts.execute("SELECT count(*) FROM chunks WHERE chunks MATCH ?", (lq.match,)).fetchone()[0] == 1


def test_hybrid_search_equals_fusing_everything() -> None:
    rng = np.random.default_rng(3)
    for trial in range(50):
        n = int(rng.integers(1, 400))
        cos = rng.uniform(-0.2, 0.9, n).astype(np.float32)
        rows = rng.choice(n, size=min(n, int(rng.integers(0, 60))), replace=False)
        bm25 = {int(r): float(rng.uniform(0.1, 30)) for r in rows}
        allowed = rng.random(n) > 0.3 if trial % 2 else None
        k = int(rng.integers(1, 30))
        dense = np.zeros(n)
        for r, b in bm25.items():
            dense[r] = b
        full = DEFAULT_FUSION.scores(dense, cos, 4)
        if allowed is not None:
            full = np.where(allowed, full, -1.0)
        expected = [float(full[i]) for i in np.argsort(-full, kind="stable")[:k] if full[i] >= 0]
        got = hybrid_search(cos, bm25, 4, k, allowed=allowed)
        assert [round(h.score, 9) for h in got] == [round(s, 9) for s in expected]
        assert all(allowed is None or allowed[h.key] for h in got)
        assert all(0.0 <= h.score <= 1.0 for h in got)
