"""Several generations on one model at once: llama.cpp's batched decoding, in the model process.

One llama.cpp context holds `parallel` sequences. Each request in flight (a generation or a decision's scores)
owns one sequence and steps through: its prompt is evaluated in chunks, then it samples one token per step. Every
`step()` is one `llama_decode` of a shared batch: one token for each sequence that is generating and, beside them,
a chunk of one cold prompt (CHUNK tokens, so a new 3,000-token thread does not freeze them).

A sequence remembers the conversation it last served (`cache_key`) and the tokens its cells hold, so the next
turn of that thread reuses the prefix. A conversation whose sequence is taken for another is parked: its cells
are copied out (`llama_state_seq_get_data`) and copied back into whichever sequence serves it next.

Every sequence samples through its own llama.cpp sampler chain (grammar included), the same chain and seed
llama-cpp-python's `Llama.generate` builds, so a run samples alike whether it decoded alone or among others.
Decoding one sequence among others gives it the same logits as decoding it alone (each token's rows are computed
on their own and other sequences' cells are masked out): at temperature 0 a run's text does not depend on its
company (tests/llm/test_batch.py).
"""

from __future__ import annotations

import codecs
import ctypes
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offline_assistants.llm.answer_bias import Pieces, Steering
from offline_assistants.llm.backend import Finish, ModelError, Piece, Sampling, Stream
from offline_assistants.llm.llama_params import SEED, gpu_offload_supported, quiet_log
from offline_assistants.llm.messages import Failed, Finished, Generate, Generated, Reply, Request, Score, Scored
from offline_assistants.llm.sampler import common_prefix, log_softmax, logits_of, sampler_chain, vocab_pieces, weights
from offline_assistants.llm.stepping import SteppedModel

N_BATCH = 512
# Prompt tokens per step at most: a step's length is a gap in the other sequences' streams, and smaller chunks
# cost more over a long context (a 3,000-token prompt at 214 tok/s in chunks of 48, 317 in 128, 339 in 512).
CHUNK = 128


def _llama() -> Any:
    import llama_cpp

    return llama_cpp


@dataclass
class _Parked:
    data: Any  # ctypes buffer with the sequence's KV cells
    size: int
    tokens: list[int]


@dataclass
class _Seq:
    id: int
    tokens: list[int] = field(default_factory=list)  # what its KV cells hold, position by position
    key: str | None = None
    job: _Job | None = None
    used: float = 0.0


@dataclass
class _Job:
    """One request in flight: a generation (with its sampling) or a score (with its options)."""

    req: int
    kind: Literal["generate", "score"]
    prompt: list[int]
    cache_key: str | None
    sampling: Sampling | None = None
    options: list[list[int]] = field(default_factory=list)
    seq: _Seq | None = None
    fed: int = 0  # prompt tokens in the sequence's cells
    cached: int = 0  # of those, how many were there before (reused, not evaluated)
    switch_ms: float = 0.0
    sampler: Any = None
    steering: Steering | None = None  # the answer bias it samples with (llm/answer_bias.py)
    max_tokens: int = 0
    produced: int = 0
    text: str = ""
    decoder: Any = None
    next_token: int | None = None  # sampled, not yet fed back
    cancelled: bool = False
    # scoring
    base: Any = None  # log-probabilities after the prompt (a numpy array over the vocabulary)
    scores: list[float] = field(default_factory=list)


class BatchedLlama(SteppedModel):
    """The full model with `parallel` sequences, stepped by the model process (llm/child.py)."""

    def __init__(self, path: Path | str, *, n_ctx: int = 4096, n_threads: int = 1, n_gpu_layers: int = -1,
                 parallel: int = 1, kv_states: int = 4, kv_cache_mb: int = 512, seed: int = SEED,
                 cpu_repack: bool = False) -> None:
        L = _llama()
        self.path = Path(path)
        self.parallel = max(1, int(parallel))
        self.n_threads = n_threads
        self.cpu_repack = cpu_repack
        self.gpu_layers = n_gpu_layers if gpu_offload_supported() else 0
        self.seed = seed
        L.llama_backend_init()
        params = L.llama_model_default_params()
        params.n_gpu_layers = self.gpu_layers
        params.use_extra_bufts = cpu_repack
        with quiet_log():
            self._model = L.llama_model_load_from_file(str(self.path).encode(), params)
            if not self._model:
                raise ModelError(f"could not load {self.path}")
            trained = int(L.llama_model_n_ctx_train(self._model))
            self.n_ctx = int(n_ctx) or trained or 4096  # what one sequence may hold
            ctx_params = L.llama_context_default_params()
            # A KV stream of n_ctx cells per sequence (not one cache shared by all, kv_unified): a sequence's cells
            # then lie as they would if it decoded alone, and attention over them gives the same bits; in a shared
            # cache, a prompt evaluated between other sequences' tokens got other cells and, 300 tokens on,
            # another text.
            ctx_params.n_ctx = self.n_ctx * self.parallel
            ctx_params.n_batch = ctx_params.n_ubatch = N_BATCH
            ctx_params.n_seq_max = self.parallel
            ctx_params.kv_unified = False
            # Flash attention computes each query row on its own, over its sequence's cells in order: a token's
            # logits are then the same whatever else shares its batch (without it, the KQ product of a batch of
            # four rows came out different from one row's, and greedy text of 2 runs in 4 diverged). Also faster
            # here: 152 against 134 tok/s for one sequence, 185 against 143 for four (2-core EPYC).
            ctx_params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED
            ctx_params.n_threads = ctx_params.n_threads_batch = n_threads  # the library's half-the-cores costs 1.5x
            self._ctx = L.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            raise ModelError(f"could not create a context of {self.n_ctx * self.parallel} tokens for {self.path}")
        self._vocab = L.llama_model_get_vocab(self._model)
        self._mem = L.llama_get_memory(self._ctx)
        self._n_vocab = int(L.llama_vocab_n_tokens(self._vocab))
        self._batch = L.llama_batch_init(N_BATCH, 0, 1)
        self._seqs = [_Seq(i) for i in range(self.parallel)]
        self._waiting: deque[_Job] = deque()  # admitted in order, waiting for a free sequence
        self._jobs: dict[int, _Job] = {}
        self._parked: OrderedDict[str, _Parked] = OrderedDict()
        self._kv_limit = kv_states
        self._kv_bytes_limit = kv_cache_mb * 1024 * 1024
        self._piece_buf = ctypes.create_string_buffer(256)
        self._owed = 0.0  # seconds of decoding the streams are owed before the next prompt chunk
        # On a GPU a whole batch costs about what a chunk does, so prompts go a batch at a time there.
        self.chunk = N_BATCH if self.gpu_layers else CHUNK
        self._local_ids = itertools.count(-1, -1)  # requests made in this process: the model process's are > 0
        self._pieces: Pieces | None = None  # the vocabulary's texts, for answer biases: made on first use

    # --- what the model process asks ---
    def info(self) -> dict[str, Any]:
        return {"n_ctx": self.n_ctx, "gpu_layers": self.gpu_layers, "n_threads": self.n_threads,
                "cpu_repack": self.cpu_repack, "n_batch": N_BATCH, "parallel": self.parallel}

    def warmup(self) -> None:
        """Evaluate a short prompt and sample two tokens: the AMX crash (llm/repack.py) strikes on the first
        decode, in the model process that is now, while loading."""
        tokens = self.tokenize("The quick brown fox jumps over the lazy dog.")
        for _ in self.generate(tokens, Sampling(temperature=0.0, max_tokens=2)):
            pass
        for seq in self._seqs:
            self._forget(seq)

    def close(self) -> None:
        """Free the context, the batch and the model (a model process just exits; this is for in-process use)."""
        L = _llama()
        for job in list(self._jobs.values()):
            self._release(job)
        if self._ctx:
            L.llama_batch_free(self._batch)
            L.llama_free(self._ctx)
            L.llama_model_free(self._model)
            self._ctx = self._model = None

    def tokenize(self, text: str) -> list[int]:
        L = _llama()
        raw = text.encode()
        buf = (L.llama_token * (len(raw) + 8))()
        n = L.llama_tokenize(self._vocab, raw, len(raw), buf, len(buf), True, False)
        return list(buf[: max(0, n)])

    def busy(self) -> bool:
        return bool(self._jobs)

    def submit(self, request: Request) -> list[Reply]:
        """Admit a request; replies come from step()."""
        try:
            match request:
                case Generate(req, prompt, sampling, cache_key):
                    job = _Job(req, "generate", list(prompt), cache_key, sampling=sampling)
                    self._check_fits(job.prompt, 1)
                    job.max_tokens = max(0, min(sampling.max_tokens, self.n_ctx - len(job.prompt)))
                case Score(req, prompt, options, cache_key):
                    job = _Job(req, "score", list(prompt), cache_key, options=[list(o) for o in options])
                    if not job.prompt or any(not o for o in job.options):
                        raise ModelError("score needs a prompt and non-empty options")
                    self._check_fits(job.prompt, max(len(o) for o in job.options))
        except ModelError as exc:
            return [Failed(request.req, str(exc))]
        self._jobs[job.req] = job
        self._waiting.append(job)
        return []

    def cancel(self, req: int) -> None:
        job = self._jobs.get(req)
        if job is not None:
            job.cancelled = True

    def step(self) -> list[Reply]:
        """Seat waiting requests, then one decode of every sequence's next tokens; the replies it produced."""
        out: list[Reply] = []
        for job in list(self._jobs.values()):
            if job.cancelled:
                out += self._end(job, "cancelled")
        self._seat(out)
        work: list[tuple[_Job, list[int]]] = []  # (job, tokens to feed)
        streaming = [j for j in self._jobs.values() if j.seq is not None and j.next_token is not None]
        if not streaming:
            self._owed = 0.0
        # A chunk of the oldest prompt still being evaluated decodes on its own, never beside other sequences'
        # rows: a chunk that shared its batch (with another prompt's chunk, or with streaming tokens) came out in
        # other last bits than alone, and so did the text after it (measured). Single tokens of several streaming
        # sequences do share a batch: each row's logits are what it gets alone.
        chunked = next(((job, chunk) for job in self._jobs.values()
                        if job.seq is not None and job.next_token is None and (chunk := self._prompt_chunk(job))),
                       None)
        prompting = chunked is not None and self._owed <= 0
        if prompting:
            assert chunked is not None
            work.append(chunked)
        else:
            work = [(job, [job.next_token]) for job in streaming]  # type: ignore[list-item]
        if not work:
            return out
        started = time.perf_counter()
        try:
            self._decode(work)
        except ModelError as exc:
            for job, _tokens in work:
                out += self._fail(job, str(exc))
            return out
        # Time-sharing between a cold prompt and the streams: after a step that carried a prompt chunk, the
        # streams get as long again to themselves, so they keep half the model instead of one token per chunk.
        took = time.perf_counter() - started
        self._owed = took if prompting and streaming else max(0.0, self._owed - took)
        index = 0
        for job, tokens in work:
            index += len(tokens)
            out += self._after(job, tokens, index - 1)
        return out

    # --- the in-process way in: one request driven to its end (LlamaBackend, tests, benchmarks) ---
    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        for reply in self._drive(Generate(next(self._local_ids), prompt, sampling, cache_key), cancelled):
            match reply:
                case Generated(_, piece):
                    yield piece
                case Finished(_, finish):
                    yield finish

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        for reply in self._drive(Score(next(self._local_ids), prompt, options, cache_key), lambda: False):
            if isinstance(reply, Scored):
                return list(reply.scores)
        raise ModelError("no scores")  # pragma: no cover - _drive ends with scores or raises

    def _drive(self, request: Request, cancelled: Callable[[], bool]) -> Iterator[Generated | Finished | Scored]:
        pending = deque(self.submit(request))
        while True:
            while pending:
                reply = pending.popleft()
                if reply.req != request.req:
                    continue
                if isinstance(reply, Failed):
                    raise ModelError(reply.message)
                yield reply
                if isinstance(reply, Finished | Scored):
                    return
                if cancelled():
                    self.cancel(request.req)
            pending.extend(self.step())

    # --- seats: which sequence serves which request ---
    def _seat(self, out: list[Reply]) -> None:
        while self._waiting:
            free = [s for s in self._seqs if s.job is None]
            if not free:
                return
            job = self._waiting.popleft()
            started = time.perf_counter()
            # The sequence that last served this conversation, else one that serves none, else the least recent.
            seq = next((s for s in free if job.cache_key is not None and s.key == job.cache_key), None)
            if seq is None:
                seq = min(free, key=lambda s: (s.key is not None and bool(s.tokens), s.used))
                self._park(seq)
                parked = self._parked.pop(job.cache_key, None) if job.cache_key is not None else None
                if parked is not None:
                    self._restore(seq, parked)
                seq.key = job.cache_key
            seq.job, job.seq = job, seq
            job.switch_ms = (time.perf_counter() - started) * 1e3
            held = common_prefix(seq.tokens, job.prompt)
            job.cached = held
            keep = min(held, len(job.prompt) - 1)  # the prompt's last token is evaluated again: its logits
            self._truncate(seq, keep)
            job.fed = keep
            if job.kind == "generate":
                assert job.sampling is not None
                if job.max_tokens == 0:
                    out += self._end(job, "length")
                    continue
                try:
                    job.sampler = sampler_chain(self._vocab, self._n_vocab, job.sampling, self.seed)
                except ModelError as exc:
                    out += self._fail(job, str(exc))
                    continue
                job.decoder = codecs.getincrementaldecoder("utf-8")("replace")
                if job.sampling.answer is not None:
                    self._pieces = self._pieces or vocab_pieces(self._vocab, self._n_vocab)
                    job.steering = Steering.of(job.sampling.answer, self._pieces)

    def _park(self, seq: _Seq) -> None:
        L = _llama()
        if seq.key is not None and seq.tokens and self._kv_limit > 0:
            size = int(L.llama_state_seq_get_size(self._ctx, seq.id))
            data = (ctypes.c_uint8 * size)()
            written = int(L.llama_state_seq_get_data(self._ctx, data, size, seq.id))
            self._parked[seq.key] = _Parked(data, written, list(seq.tokens))
            self._parked.move_to_end(seq.key)
            while len(self._parked) > self._kv_limit or (
                    len(self._parked) > 1 and self.kv_cache_bytes() > self._kv_bytes_limit):
                self._parked.popitem(last=False)
        self._forget(seq)

    def _restore(self, seq: _Seq, parked: _Parked) -> None:
        L = _llama()
        if parked.size and int(L.llama_state_seq_set_data(self._ctx, parked.data, parked.size, seq.id)):
            seq.tokens = list(parked.tokens)
        else:  # could not restore: the prompt is evaluated in full
            self._forget(seq)

    def _forget(self, seq: _Seq) -> None:
        _llama().llama_memory_seq_rm(self._mem, seq.id, -1, -1)
        seq.tokens = []
        seq.key = None

    def _truncate(self, seq: _Seq, keep: int) -> None:
        if keep < len(seq.tokens):
            _llama().llama_memory_seq_rm(self._mem, seq.id, keep, -1)
            del seq.tokens[keep:]

    def kv_cache_bytes(self) -> int:
        return sum(p.size for p in self._parked.values())

    # --- one step's work ---
    def _prompt_chunk(self, job: _Job) -> list[int]:
        if job.fed < len(job.prompt):
            # Chunks end at fixed positions (multiples of CHUNK), whoever else decodes: how a prompt is cut into
            # batches changes its cells' values in the last bits, and with them a run's text.
            end = min(len(job.prompt), (job.fed // self.chunk + 1) * self.chunk)
            return job.prompt[job.fed: end]
        if job.kind == "score" and job.base is not None and len(job.scores) < len(job.options):
            return job.options[len(job.scores)][:-1]  # short (a sentence): whole, whatever else shares the step
        return []

    def _decode(self, work: list[tuple[_Job, list[int]]]) -> None:
        L = _llama()
        batch = self._batch
        n = 0
        for job, tokens in work:
            seq = job.seq
            assert seq is not None
            every = job.kind == "score" and job.fed >= len(job.prompt)  # an option: logits at each of its tokens
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = len(seq.tokens) + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq.id
                batch.logits[n] = every or i == len(tokens) - 1
                n += 1
        batch.n_tokens = n
        code = int(L.llama_decode(self._ctx, batch))
        if code != 0:
            raise ModelError(f"llama_decode failed ({code}) on a batch of {n} tokens")
        for job, tokens in work:
            assert job.seq is not None
            job.seq.tokens.extend(tokens)
            job.seq.used = time.monotonic()

    def _after(self, job: _Job, tokens: list[int], last: int) -> list[Reply]:
        """What a job does with the logits its tokens produced (`last`: the batch index of its last token)."""
        if job.kind == "score":
            return self._after_score(job, tokens, last)
        if job.next_token is None:
            job.fed += len(tokens)
            if job.fed < len(job.prompt):
                return []
        else:
            job.next_token = None
        return self._sample(job, last)

    def _sample(self, job: _Job, index: int) -> list[Reply]:
        L = _llama()
        assert job.sampling is not None
        weighed = None
        if job.sampling.logprobs is not None:  # the model's own weights, before the answer bias changes them
            weighed = log_softmax(logits_of(self._ctx, index, self._n_vocab))
        if job.steering is not None:
            job.steering.apply(job.text, logits_of(self._ctx, index, self._n_vocab))
        token = int(L.llama_sampler_sample(job.sampler, self._ctx, index))
        if L.llama_vocab_is_eog(self._vocab, token):
            return self._end(job, "stop")
        job.produced += 1
        text = job.decoder.decode(self._piece(token))
        job.text += text
        chosen, top = (None, ()) if weighed is None else weights(weighed, token, job.sampling.logprobs or 0,
                                                                 self._piece)
        out: list[Reply] = [Generated(job.req, Piece(token, text, chosen, top))]
        if job.sampling.stop and any(s in job.text[-len(s) - len(text):] for s in job.sampling.stop):
            return out + self._end(job, "stop")
        if job.cancelled:
            return out + self._end(job, "cancelled")
        if job.produced >= job.max_tokens:
            return out + self._end(job, "length")
        job.next_token = token
        return out

    def _after_score(self, job: _Job, tokens: list[int], last: int) -> list[Reply]:
        if job.fed < len(job.prompt):
            job.fed += len(tokens)
            if job.fed < len(job.prompt):
                return []
            job.base = self._log_softmax(last)
        else:  # one option's tokens but its last: each position's distribution scores the token after it
            option = job.options[len(job.scores)]
            first = last - len(tokens) + 1
            dists = [job.base] + [self._log_softmax(first + i) for i in range(len(tokens))]
            job.scores.append(float(sum(dists[i][t] for i, t in enumerate(option))))
            assert job.seq is not None
            self._truncate(job.seq, len(job.prompt))  # the next option continues the prompt, not this one
        while len(job.scores) < len(job.options) and len(job.options[len(job.scores)]) == 1:
            assert job.base is not None
            job.scores.append(float(job.base[job.options[len(job.scores)][0]]))
        if len(job.scores) < len(job.options):
            if len(job.options[len(job.scores)]) - 1 > N_BATCH:
                return self._fail(job, "an option is longer than a batch")
            return []
        out: list[Reply] = [Scored(job.req, list(job.scores))]
        self._release(job)
        return out

    def _log_softmax(self, index: int) -> Any:
        import numpy as np

        logits = np.ctypeslib.as_array(_llama().llama_get_logits_ith(self._ctx, index), shape=(self._n_vocab,))
        shifted = logits - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    def _end(self, job: _Job, reason: Literal["stop", "length", "cancelled"]) -> list[Reply]:
        reply: Reply = (Finished(job.req, Finish(reason, len(job.prompt) - job.cached, job.produced, job.switch_ms))
                        if job.kind == "generate" else Failed(job.req, "cancelled"))
        self._release(job)
        return [reply]

    def _fail(self, job: _Job, message: str) -> list[Reply]:
        if job.seq is not None:
            self._forget(job.seq)  # what its cells hold is unknown after a failed decode
        self._release(job)
        return [Failed(job.req, message)]

    def _release(self, job: _Job) -> None:
        self._jobs.pop(job.req, None)
        if job in self._waiting:
            self._waiting.remove(job)
        if job.sampler is not None:
            _llama().llama_sampler_free(job.sampler)
            job.sampler = None
        if job.seq is not None:
            job.seq.job = None
            job.seq.used = time.monotonic()
            job.seq = None

    # --- pieces ---
    def _check_fits(self, prompt: list[int], extra: int) -> None:
        if len(prompt) + extra > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")

    def _piece(self, token: int) -> bytes:
        n = int(_llama().llama_token_to_piece(self._vocab, token, self._piece_buf, len(self._piece_buf), 0, False))
        return self._piece_buf.raw[:n] if n > 0 else b""
