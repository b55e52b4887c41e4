"""Several generations on one model at once: llama.cpp's batched decoding, in the model process.

One llama.cpp context holds `parallel` sequences. Each request in flight (a generation or a decision's scores)
owns one sequence and steps through: its prompt is evaluated in chunks, then it samples one token per step. Every
`step()` is one `llama_decode` of a shared batch: one token for each sequence that is generating and, beside them,
a chunk of one cold prompt (CHUNK tokens, so a new 3,000-token thread does not freeze them).

Which sequence serves which conversation (parked states, prefixes shared between conversations): llm/kv_seats.py.

**Speculation** (llm/lookup.py): beside a generating sequence's sampled token go the tokens the context suggests
come next, in the same decode; each row's token is then sampled as it would have been alone, and the drafted tokens
are kept as long as the samples agree. Each position is sampled from the same logits with the same chain and draws,
so the text is the one decoding token by token gives, at any temperature; only the time differs.

**A decision's options** are decoded `score_width` at a time, each on a sequence holding a copy of the prompt's
cells: on a GPU a batch of rows costs about what one row does, so all options go in one decode. On a CPU a row costs
nearly its share whatever the batch (measured: three options of 22 tokens, 107-142 ms in one decode across three
sequences against 106-132 ms one after another), so there they go one per decode, without copies.

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
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from offline_assistants.llm.answer_bias import Pieces, Steering
from offline_assistants.llm.backend import Finish, ModelError, Piece, Sampling, Stream
from offline_assistants.llm.jobs import Job, Rows
from offline_assistants.llm.kv_seats import Seats
from offline_assistants.llm.llama_params import SEED, gpu_offload_supported, quiet_log
from offline_assistants.llm.lookup import MAX_DRAFT, Costs, Lookup, Pace
from offline_assistants.llm.messages import Failed, Finished, Generate, Generated, Reply, Request, Score, Scored
from offline_assistants.llm.sampler import log_softmax, logits_of, sampler_chain, vocab_pieces, weights
from offline_assistants.llm.stepping import SteppedModel

N_BATCH = 512
# Prompt tokens per step at most: a step's length is a gap in the other sequences' streams, and smaller chunks
# cost more over a long context (a 3,000-token prompt at 214 tok/s in chunks of 48, 317 in 128, 339 in 512).
CHUNK = 128


def _llama() -> Any:
    import llama_cpp

    return llama_cpp


class BatchedLlama(SteppedModel):
    """The full model with `parallel` sequences, stepped by the model process (llm/child.py)."""

    def __init__(self, path: Path | str, *, n_ctx: int = 4096, n_threads: int = 1, n_gpu_layers: int = -1,
                 parallel: int = 1, kv_states: int = 4, kv_cache_mb: int = 512, seed: int = SEED,
                 cpu_repack: bool = False, draft: int = MAX_DRAFT, score_width: int | None = None) -> None:
        L = _llama()
        self.path = Path(path)
        self.parallel = max(1, int(parallel))
        self.n_threads = n_threads
        self.cpu_repack = cpu_repack
        self.gpu_layers = n_gpu_layers if gpu_offload_supported() else 0
        self.seed = seed
        self.draft = max(0, int(draft))  # tokens drafted at most per step; 0: no speculation
        # Options decoded together: all on a GPU, one at a time on a CPU (see above).
        self.score_width = max(1, score_width if score_width is not None else
                               (self.parallel if self.gpu_layers else 1))
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
        self._n_vocab = int(L.llama_vocab_n_tokens(self._vocab))
        self._batch = L.llama_batch_init(N_BATCH, 0, 1)
        # On a GPU a whole batch costs about what a chunk does, so prompts go a batch at a time there.
        self.chunk = N_BATCH if self.gpu_layers else CHUNK
        self.seats = Seats(self._ctx, L.llama_get_memory(self._ctx), self._vocab, self.parallel, chunk=self.chunk,
                           kv_states=kv_states, kv_cache_mb=kv_cache_mb)
        self._waiting: deque[Job] = deque()  # admitted in order, waiting for a free sequence
        self._jobs: dict[int, Job] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._owed = 0.0  # seconds of decoding the streams are owed before the next prompt chunk
        self._local_ids = itertools.count(-1, -1)  # requests made in this process: the model process's are > 0
        self._pieces: Pieces | None = None  # the vocabulary's texts, for answer biases: made on first use
        self.costs = Costs()  # what decodes and drafted rows cost here (llm/lookup.py)
        self.overall = Pace()  # how drafts fared over every sequence so far

    # --- what the model process asks ---
    def info(self) -> dict[str, Any]:
        return {"n_ctx": self.n_ctx, "gpu_layers": self.gpu_layers, "n_threads": self.n_threads,
                "cpu_repack": self.cpu_repack, "n_batch": N_BATCH, "parallel": self.parallel, "draft": self.draft,
                "score_width": self.score_width}

    def warmup(self) -> None:
        """Evaluate a short prompt and sample two tokens: the AMX crash (llm/repack.py) strikes on the first
        decode, in the model process that is now, while loading."""
        tokens = self.tokenize("The quick brown fox jumps over the lazy dog.")
        for _ in self.generate(tokens, Sampling(temperature=0.0, max_tokens=2)):
            pass
        for seat in self.seats.seats:
            self.seats.forget(seat)

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
                    job = Job(req, "generate", list(prompt), cache_key, sampling=sampling)
                    self._check_fits(job.prompt, 1)
                    job.max_tokens = max(0, min(sampling.max_tokens, self.n_ctx - len(job.prompt)))
                case Score(req, prompt, options, cache_key):
                    job = Job(req, "score", list(prompt), cache_key, options=[list(o) for o in options])
                    if not job.prompt or any(not o for o in job.options):
                        raise ModelError("score needs a prompt and non-empty options")
                    if max(len(o) for o in job.options) - 1 > N_BATCH:
                        raise ModelError("an option is longer than a batch")
                    self._check_fits(job.prompt, max(len(o) for o in job.options))
        except ModelError as exc:
            return [Failed(request.req, str(exc))]
        job.turn_end = self.seats.turn_end(job.prompt)
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
        streaming = [j for j in self._jobs.values() if j.seat is not None and j.next_token is not None]
        if not streaming:
            self._owed = 0.0
        # A chunk of the oldest prompt still being evaluated (or a decision's options) decodes on its own, never
        # beside other sequences' rows: a chunk that shared its batch (with another prompt's chunk, or with
        # streaming tokens) came out in other last bits than alone, and so did the text after it (measured).
        # Tokens of several streaming sequences do share a batch: each row's logits are what it gets alone.
        chunked = next((found for job in self._jobs.values()
                        if job.seat is not None and job.next_token is None and (found := self._prompt_rows(job))),
                       None)
        prompting = chunked is not None and self._owed <= 0
        work = (chunked if prompting and chunked is not None
                else [self._stream_rows(job, len(streaming)) for job in streaming])
        if not work:
            return out
        started = time.perf_counter()
        try:
            try:
                self._decode(work)
            except ModelError:
                if not any(rows.every and rows.option < 0 for rows in work):
                    raise
                # Never let a draft fail a run: the same step again with the sampled tokens alone.
                work = [self._stream_rows(rows.job, len(work), draft=False) for rows in work]
                self._decode(work)
        except ModelError as exc:
            for job in {rows.job.req: rows.job for rows in work}.values():
                out += self._fail(job, str(exc))
            return out
        # Time-sharing between a cold prompt and the streams: after a step that carried a prompt chunk, the
        # streams get as long again to themselves, so they keep half the model instead of one token per chunk.
        took = time.perf_counter() - started
        self._owed = took if prompting and streaming else max(0.0, self._owed - took)
        if not prompting:
            self.costs.decoded(sum(len(r.tokens) for r in work), sum(len(r.tokens) - 1 for r in work), took * 1e3)
        if work[0].job.kind == "score" and work[0].option >= 0:
            return out + self._after_options(work[0].job, work)
        for rows in work:
            try:
                out += self._after(rows)
            except ModelError as exc:  # one sequence's sampling failed: only its request ends
                out += self._fail(rows.job, str(exc))
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

    # --- seats ---
    def _seat(self, out: list[Reply]) -> None:
        while self._waiting and self.seats.free():
            job = self._waiting.popleft()
            started = time.perf_counter()
            seat, keep = self.seats.take(job.cache_key, job.prompt, job.turn_end)
            seat.busy, job.seat = True, seat
            job.switch_ms = (time.perf_counter() - started) * 1e3
            job.cached = job.fed = keep
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

    # --- one step's work ---
    def _prompt_rows(self, job: Job) -> list[Rows]:
        assert job.seat is not None
        if job.fed < len(job.prompt):
            # Chunks end at fixed places (the first turn's end, multiples of CHUNK), whoever else decodes: how a
            # prompt is cut into batches changes its cells' values in the last bits, and with them a run's text.
            end = self.seats.next_cut(job.prompt, job.fed, job.turn_end)
            return [Rows(job, job.seat, job.prompt[job.fed: end])]
        if job.kind == "score" and job.base is not None:
            return self._option_rows(job)
        return []

    def _stream_rows(self, job: Job, sequences: int, *, draft: bool = True) -> Rows:
        """The sampled token, and the tokens the context suggests follow it."""
        assert job.seat is not None and job.next_token is not None
        drafted: list[int] = []
        room = min(self.draft, job.max_tokens - job.produced - 1, self.n_ctx - len(job.seat.tokens) - 1)
        wanted = min(room, job.pace.next(self.costs, sequences, self.overall)) if draft and room > 0 else 0
        if wanted > 0:
            if job.lookup is None:  # indexed when a draft is first worth its rows, not for every reply
                job.lookup = Lookup.of([*job.seat.tokens, job.next_token])
            drafted = job.lookup.draft(wanted)
        return Rows(job, job.seat, [job.next_token, *drafted], every=bool(drafted))

    def _decode(self, work: list[Rows]) -> None:
        L = _llama()
        batch = self._batch
        n = 0
        for rows in work:
            rows.first = n
            for i, token in enumerate(rows.tokens):
                batch.token[n] = token
                batch.pos[n] = len(rows.seat.tokens) + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = rows.seat.id
                batch.logits[n] = rows.every or i == len(rows.tokens) - 1
                n += 1
        batch.n_tokens = n
        code = int(L.llama_decode(self._ctx, batch))
        if code != 0:
            for rows in work:  # whatever the failed decode left in their cells is not theirs
                self.seats.truncate(rows.seat, len(rows.seat.tokens), drop_beyond=True)
            raise ModelError(f"llama_decode failed ({code}) on a batch of {n} tokens")
        for rows in work:
            seat = rows.seat
            # Cells evaluated from a cut to the next, right after exact ones, are exact too (llm/kv_seats.py).
            start = len(seat.tokens)
            if (rows.job.fed == start and seat.exact == start and rows.option < 0
                    and self.seats.is_cut(start, rows.job.turn_end) and start < len(rows.job.prompt)):
                seat.exact = start + len(rows.tokens)
            seat.tokens.extend(rows.tokens)
            seat.used = time.monotonic()

    def _after(self, rows: Rows) -> list[Reply]:
        """What a job does with the logits its rows produced."""
        job = rows.job
        if job.kind == "score":
            job.fed += len(rows.tokens)
            if job.fed < len(job.prompt):
                return []
            job.base = self._log_softmax(rows.first + len(rows.tokens) - 1)
            return self._scored_if_done(job)
        if job.next_token is None:  # a prompt chunk
            job.fed += len(rows.tokens)
            if job.fed < len(job.prompt):
                return []
            return self._sample(job, rows.first + len(rows.tokens) - 1, [])
        job.next_token = None
        return self._sample(job, rows.first, rows.tokens[1:])

    def _sample(self, job: Job, index: int, drafted: list[int]) -> list[Reply]:
        """Sample at row `index` and on through the drafted tokens' rows while the samples agree with them."""
        L = _llama()
        assert job.sampling is not None and job.seat is not None
        out: list[Reply] = []
        base = len(job.seat.tokens) - len(drafted)  # cells up to the sampled token fed this step
        for i in range(len(drafted) + 1):
            weighed = None
            if job.sampling.logprobs is not None:  # the model's own weights, before the answer bias changes them
                weighed = log_softmax(logits_of(self._ctx, index + i, self._n_vocab))
            if job.steering is not None:
                job.steering.apply(job.text, logits_of(self._ctx, index + i, self._n_vocab))
            token = int(L.llama_sampler_sample(job.sampler, self._ctx, index + i))
            agreed = i < len(drafted) and token == drafted[i]  # its cells are already there
            ending: Literal["stop", "length", "cancelled"] | None = None
            if L.llama_vocab_is_eog(self._vocab, token):
                ending, agreed = "stop", False
            else:
                job.produced += 1
                text = job.decoder.decode(self._piece(token))
                job.text += text
                if job.lookup is not None:
                    job.lookup.extend([token])
                chosen, top = (None, ()) if weighed is None else weights(weighed, token, job.sampling.logprobs or 0,
                                                                         self._piece)
                out.append(Generated(job.req, Piece(token, text, chosen, top)))
                if job.sampling.stop and any(s in job.text[-len(s) - len(text):] for s in job.sampling.stop):
                    ending = "stop"
                elif job.cancelled:
                    ending = "cancelled"
                elif job.produced >= job.max_tokens:
                    ending = "length"
            if agreed and ending is None:
                continue
            # The cells of drafted tokens past the last agreed one are not this text's.
            self.seats.truncate(job.seat, base + i + int(agreed))
            job.pace.took(len(drafted), i + int(agreed))
            self.overall.took(len(drafted), i + int(agreed))
            if ending is not None:
                return out + self._end(job, ending)
            job.next_token = token
            return out
        raise AssertionError("unreachable: the last row never agrees with a draft")  # pragma: no cover

    # --- a decision's options ---
    def _option_rows(self, job: Job) -> list[Rows]:
        """The next options' tokens but their last, each on a sequence holding the prompt."""
        assert job.seat is not None
        pending = [i for i in range(len(job.options)) if i not in job.scores]
        want = min(len(pending), self.score_width) - 1 - len(job.helpers)
        for seat in self.seats.free()[:max(0, want)]:
            seat.busy = True
            self.seats.lend(job.seat, seat, len(job.prompt))
            job.helpers.append(seat)
        seats = [job.seat, *job.helpers]
        return [Rows(job, seat, job.options[i][:-1], every=True, option=i) for seat, i in zip(seats, pending)]

    def _after_options(self, job: Job, work: list[Rows]) -> list[Reply]:
        for rows in work:
            option = job.options[rows.option]
            dists = [job.base] + [self._log_softmax(rows.first + i) for i in range(len(rows.tokens))]
            job.scores[rows.option] = float(sum(dists[i][t] for i, t in enumerate(option)))
            self.seats.truncate(rows.seat, len(job.prompt))  # the next option continues the prompt, not this one
        return self._scored_if_done(job)

    def _scored_if_done(self, job: Job) -> list[Reply]:
        for i, option in enumerate(job.options):  # one token: its score is the prompt's distribution's
            if len(option) == 1 and i not in job.scores:
                job.scores[i] = float(job.base[option[0]])
        if len(job.scores) < len(job.options):
            return []
        out: list[Reply] = [Scored(job.req, [job.scores[i] for i in range(len(job.options))])]
        self._release(job)
        return out

    def _log_softmax(self, index: int) -> Any:
        return log_softmax(logits_of(self._ctx, index, self._n_vocab))

    # --- endings ---
    def _end(self, job: Job, reason: Literal["stop", "length", "cancelled"]) -> list[Reply]:
        reply: Reply = (Finished(job.req, Finish(reason, len(job.prompt) - job.cached, job.produced, job.switch_ms,
                                                 drafted=job.pace.drafted, accepted=job.pace.accepted))
                        if job.kind == "generate" else Failed(job.req, "cancelled"))
        self._release(job)
        return [reply]

    def _fail(self, job: Job, message: str) -> list[Reply]:
        for seat in [job.seat, *job.helpers]:
            if seat is not None:
                self.seats.forget(seat)  # what its cells hold is unknown after a failed decode
        self._release(job)
        return [Failed(job.req, message)]

    def _release(self, job: Job) -> None:
        self._jobs.pop(job.req, None)
        if job in self._waiting:
            self._waiting.remove(job)
        if job.sampler is not None:
            _llama().llama_sampler_free(job.sampler)
            job.sampler = None
        for seat in [job.seat, *job.helpers]:
            if seat is not None:
                self.seats.release(seat)
        job.seat, job.helpers = None, []

    # --- pieces ---
    def _check_fits(self, prompt: list[int], extra: int) -> None:
        if len(prompt) + extra > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")

    def _piece(self, token: int) -> bytes:
        n = int(_llama().llama_token_to_piece(self._vocab, token, self._piece_buf, len(self._piece_buf), 0, False))
        return self._piece_buf.raw[:n] if n > 0 else b""
