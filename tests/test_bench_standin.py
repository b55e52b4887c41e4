"""The device check's stand-in model (offline_assistants/bench/standin.py): the real file's header, byte for byte,
then random weights of each tensor's type, which llama.cpp loads and runs like the real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from offline_assistants.bench.standin import BLOCKS, Tensor, fill, head, read_header
from offline_assistants.llm.catalog import resolve


@pytest.fixture(scope="module")
def embedded() -> Path:
    return resolve(None).path


def test_the_stand_in_has_the_real_header_and_size(embedded: Path, tmp_path: Path) -> None:
    head(embedded, tmp_path / "m.head")
    fill(tmp_path / "m.head", tmp_path / "m.gguf", seed=1)
    real, standin = read_header(embedded), read_header(tmp_path / "m.gguf")
    assert standin == real and len(real.tensors) > 100
    assert (tmp_path / "m.gguf").stat().st_size == embedded.stat().st_size
    with embedded.open("rb") as f:
        assert (tmp_path / "m.gguf").read_bytes()[:real.data_start] == f.read(real.data_start)
    # the weights are not the real ones, and the same seed makes the same file
    fill(tmp_path / "m.head", tmp_path / "again.gguf", seed=1)
    assert (tmp_path / "again.gguf").read_bytes() == (tmp_path / "m.gguf").read_bytes()
    t = max(real.tensors, key=lambda t: t.nbytes)
    with embedded.open("rb") as a, (tmp_path / "m.gguf").open("rb") as b:
        a.seek(real.data_start + t.offset)
        b.seek(real.data_start + t.offset)
        assert a.read(4096) != b.read(4096)


def test_a_block_s_scales_are_small_finite_halves() -> None:
    from offline_assistants.bench.standin import weights

    q4k = Tensor("blk.0.ffn_up.weight", (256, 4), 12, 0)
    data = np.frombuffer(weights(q4k, np.random.default_rng(0)), np.uint8).reshape(4, BLOCKS[12].size)
    d, dmin = data[:, 0:2].copy().view(np.float16), data[:, 2:4].copy().view(np.float16)
    assert np.all(d == np.float16(8e-5)) and np.all(dmin == np.float16(6e-4))
    norm = np.frombuffer(weights(Tensor("blk.0.attn_norm.weight", (64,), 0, 0), np.random.default_rng(0)), np.float32)
    assert np.all(norm == 1.0)


def test_a_type_it_cannot_fill_is_refused() -> None:
    with pytest.raises(ValueError, match="type 16 is not"):
        _ = Tensor("blk.0.ffn_up.weight", (256, 4), 16, 0).nbytes  # IQ2_XXS


@pytest.mark.model  # llama.cpp loads the stand-in's weights
def test_llama_cpp_runs_the_stand_in_with_finite_logits(embedded: Path, tmp_path: Path) -> None:
    import llama_cpp

    head(embedded, tmp_path / "m.head")
    fill(tmp_path / "m.head", tmp_path / "m.gguf")
    llm = llama_cpp.Llama(str(tmp_path / "m.gguf"), n_ctx=256, n_threads=2, n_gpu_layers=0, logits_all=True,
                          verbose=False)
    tokens = llm.tokenize(b"Hello, how are you today?")
    llm.eval(tokens)
    logits = np.array(llm.scores[len(tokens) - 1])
    assert np.isfinite(logits).all() and logits.std() > 0
    llm.close()
