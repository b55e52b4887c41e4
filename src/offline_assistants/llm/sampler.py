"""One sequence's sampler (a llama.cpp sampler chain), the logit bias an answer adds before it (llm/answer_bias.py)
and the prefix a sequence already holds: the pieces of llm/batch.py that are about one sequence, not the batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_assistants.llm.answer_bias import Pieces
from offline_assistants.llm.backend import ModelError, Sampling, TokenChoice
from offline_assistants.llm.gbnf import compile_constraint

PENALTY_LAST_N = 64  # llama-cpp-python's default window for the repeat penalty


def sampler_chain(vocab: Any, n_vocab: int, sampling: Sampling, seed: int) -> Any:
    """llama-cpp-python's chain for Llama.generate(temp, top_p, top_k=0 or 1, min_p=0, repeat_penalty, grammar):
    penalties, grammar, then greedy at temperature 0, else top-k, typical, top-p, min-p, temperature and a
    seeded draw. The caller frees it (llama_sampler_free)."""
    import llama_cpp as L

    chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
    grammar = compile_constraint(sampling.constraint) if sampling.constraint is not None else None
    repeat = 1.0 if grammar else sampling.repeat_penalty  # JSON repeats its quotes and braces
    # These bindings take n_vocab first, as llama-cpp-python's own add_penalties passes it.
    L.llama_sampler_chain_add(chain, L.llama_sampler_init_penalties(
        n_vocab, PENALTY_LAST_N, repeat, sampling.frequency_penalty, sampling.presence_penalty))
    if sampling.logit_bias:
        biases = (L.llama_logit_bias * len(sampling.logit_bias))(
            *(L.llama_logit_bias(token, bias) for token, bias in sampling.logit_bias))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_logit_bias(n_vocab, len(sampling.logit_bias), biases))
    if grammar is not None:
        compiled = L.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
        if not compiled:
            L.llama_sampler_free(chain)
            raise ModelError("the output constraint's grammar did not compile")
        L.llama_sampler_chain_add(chain, compiled)
    if sampling.temperature == 0:
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        return chain
    for sampler in (L.llama_sampler_init_top_k(0), L.llama_sampler_init_typical(1.0, 1),
                    L.llama_sampler_init_top_p(sampling.top_p, 1), L.llama_sampler_init_min_p(0.0, 1),
                    L.llama_sampler_init_temp(sampling.temperature),
                    L.llama_sampler_init_dist(seed if sampling.seed is None else sampling.seed % 2**32)):
        L.llama_sampler_chain_add(chain, sampler)
    return chain


def vocab_pieces(vocab: Any, n_vocab: int) -> Pieces:
    """Every token's text, special tokens spelled out (a template's `<tool_call>` is one token in some models)."""
    import ctypes

    import llama_cpp as L

    buf = ctypes.create_string_buffer(256)

    def piece(token: int) -> bytes:
        n = int(L.llama_token_to_piece(vocab, token, buf, len(buf), 0, True))
        return buf.raw[:n] if n > 0 else b""

    return Pieces.of(n_vocab, piece, [t for t in range(n_vocab) if L.llama_vocab_is_eog(vocab, t)])


def logits_of(ctx: Any, index: int, n_vocab: int) -> Any:
    """The logits of the batch's row `index` as a numpy array over the vocabulary: the sampler chain reads them
    next, so a change made to them steers the token it samples."""
    import llama_cpp as L
    import numpy as np

    return np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, index), shape=(n_vocab,))


def log_softmax(logits: Any) -> Any:
    """The logits as log-probabilities (a new array: the logits stay as they are for the sampler)."""
    import numpy as np

    shifted = logits.astype(np.float64) - float(logits.max())
    result: Any = shifted - np.log(np.exp(shifted).sum())
    return result


def weights(weighed: Any, token: int, n: int, piece: Callable[[int], bytes]
            ) -> tuple[TokenChoice, tuple[TokenChoice, ...]]:
    """The sampled token's log-probability and the n likeliest tokens' (OpenAI's logprobs, top_logprobs)."""
    import numpy as np

    best = np.argpartition(-weighed, n)[:n] if n else np.array([], dtype=int)
    best = best[np.argsort(-weighed[best])]
    return (TokenChoice(piece(token), float(weighed[token])),
            tuple(TokenChoice(piece(int(t)), float(weighed[t])) for t in best))


def common_prefix(held: list[int], prompt: list[int]) -> int:
    """How many leading prompt tokens a sequence already holds. Vectorised: a Python loop over a 3,000-token
    prompt would sit on every model call."""
    import numpy as np

    n = min(len(held), len(prompt))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(held[:n]) != np.asarray(prompt[:n]))
    return int(differ[0]) if differ.size else n
