"""Every model call of a run goes through here: the sampling it gets, how many tokens it may write, the usage it
adds to the run, and what its finish means for the run (`Generated.ending`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from offline_assistants.engine.control import RunControl
from offline_assistants.engine.metrics import CallStats
from offline_assistants.engine.turn import Budget, Cancelled, Incomplete, Turn
from offline_assistants.llm.backend import (
    AnswerBias,
    Constraint,
    Finish,
    ModelBackend,
    ModelError,
    Sampling,
    TokenChoice,
)
from offline_assistants.llm.defaults import API_DEFAULTS, SamplingDefaults
from offline_assistants.store import Store

Ending = Literal["stop", "cut", "budget", "cancelled"]


@dataclass
class Generated:
    text: str
    tokens: list[int] = field(default_factory=list)
    # stop: the model ended (or a `halt` rule ended it as a natural stop); cut: the window or the server's output
    # cap ended it; budget: the run's max_completion_tokens did; cancelled: the run was cancelled or expired.
    ending: Ending = "stop"
    read: int = 0  # prompt tokens counted to the run
    written: int = 0  # completion tokens counted to the run
    # With Sampling.logprobs: each token with its log-probability and alternatives, as the APIs show them.
    logprobs: list[dict[str, Any]] = field(default_factory=list)

    def check(self) -> Generated:
        """For model calls inside a tool round: a cancelled or out-of-budget call ends the run's work here."""
        if self.ending == "cancelled":
            raise Cancelled()
        if self.ending == "budget":
            raise Incomplete("max_completion_tokens")
        return self


def _weight(choice: TokenChoice) -> dict[str, Any]:
    return {"token": choice.token.decode("utf-8", errors="replace"), "logprob": choice.logprob,
            "bytes": list(choice.token)}


def api_logprob(chosen: TokenChoice, top: tuple[TokenChoice, ...]) -> dict[str, Any]:
    """A token's log-probabilities as Chat Completions and the Responses API both show them."""
    return {**_weight(chosen), "top_logprobs": [_weight(t) for t in top]}


class ModelCalls:
    """A run's model calls: their sampling, how many tokens each may write, and the usage each adds to the run."""

    def __init__(self, backend: ModelBackend, store: Store, control: RunControl, *,
                 defaults: SamplingDefaults = API_DEFAULTS, max_output_tokens: int | None = None) -> None:
        self.backend = backend
        self.store = store
        self.control = control  # whether a run must stop now
        self.defaults = defaults
        self.max_output_tokens = max_output_tokens

    def sampling(self, turn: Turn, max_tokens: int, constraint: Constraint | None,
                 answer: AnswerBias | None = None) -> Sampling:
        run = turn.run
        return Sampling(
            temperature=self.defaults.temperature if run.temperature is None else run.temperature,
            top_p=self.defaults.top_p if run.top_p is None else run.top_p,
            repeat_penalty=self.defaults.repeat_penalty,
            max_tokens=max_tokens,
            constraint=constraint,
            answer=answer if self.backend.steers_answers else None,
            # A request's stop sequences and penalties are for its answer: a call's JSON is the grammar's.
            stop=tuple(turn.sampling.get("stop") or ()) if constraint is None else (), seed=turn.sampling.get("seed"),
            presence_penalty=(turn.sampling.get("presence_penalty") or 0.0) if constraint is None else 0.0,
            frequency_penalty=(turn.sampling.get("frequency_penalty") or 0.0) if constraint is None else 0.0,
            logit_bias=tuple((int(k), float(v)) for k, v in (turn.sampling.get("logit_bias") or {}).items()),
            logprobs=turn.sampling.get("logprobs"),
        )

    def max_new(self, prompt: list[int], budget: Budget) -> tuple[int, bool]:
        """How many tokens the next call may generate, and whether max_completion_tokens is the limit."""
        room = self.backend.n_ctx - len(prompt)
        left = budget.completion_left()
        if left is None and self.max_output_tokens:
            # No budget from the client: the server's default keeps a reply from filling the whole window.
            room = min(room, self.max_output_tokens)
        if left is not None and left <= 0:
            raise Incomplete("max_completion_tokens")
        if left is not None and left <= room:
            return left, True
        return room, False

    def generate(
        self, turn: Turn, prompt: list[int], budget: Budget, *, constraint: Constraint | None = None,
        answer: AnswerBias | None = None, max_tokens: int | None = None, on_piece: Callable[[str], None] | None = None,
        on_token: Callable[[int, str], object] | None = None,
        halt: Callable[[], bool] | None = None,
    ) -> Generated:
        """One model call. `on_piece` gets each piece of text, `on_token` each token with its text; `halt` ends it
        early as a natural stop (the loop guard, a call written as text); `answer` steers an answer after tool calls
        (llm/answer_bias.py)."""
        limit, by_budget = self.max_new(prompt, budget)
        if max_tokens is not None and max_tokens < limit:
            limit, by_budget = max_tokens, False
        run_id = turn.run_id
        out = Generated("")
        finish: Finish | None = None

        def stop() -> bool:  # the backend checks this after every token
            return self.control.must_stop(run_id) or (halt is not None and halt())

        stream = self.backend.generate(prompt, self.sampling(turn, limit, constraint, answer), cache_key=turn.cache_key,
                                       cancelled=stop)
        first = last = 0.0  # monotonic times of the first and the latest token
        try:
            for item in stream:
                if isinstance(item, Finish):
                    finish = item
                    break
                last = time.monotonic()
                first = first or last
                out.tokens.append(item.token)
                if item.chosen is not None:
                    out.logprobs.append(api_logprob(item.chosen, item.top))
                if on_token is not None:
                    on_token(item.token, item.text)
                if item.text:
                    out.text += item.text
                    if on_piece is not None:
                        on_piece(item.text)
        finally:
            stream.close()  # a stream left early: the backend's request ends now, not when it is collected
        if finish is not None and finish.tokens is not None:
            out.tokens = list(finish.tokens)  # the pieces carried stand-in ids (a server that streams only text)
        if finish is None:  # the stream ended without its Finish: only a broken backend does that
            raise ModelError("the model's output ended without a finish")
        if finish.reason == "cancelled":
            out.ending = "cancelled" if self.control.must_stop(run_id) else "stop"
        elif finish.reason == "length":
            out.ending = "budget" if by_budget else "cut"
        stats = CallStats(
            first_token_ms=(first - turn.started) * 1000 if first else None,
            generated_tokens=max(len(out.tokens) - 1, 0), generation_ms=(last - first) * 1000,
            # The backend reports the tokens it evaluated: the rest of the prompt came from its KV cache.
            prompt_tokens=len(prompt), cached_prompt_tokens=max(len(prompt) - finish.prompt_tokens, 0),
            window=turn.window)
        out.read, out.written = len(prompt), len(out.tokens)
        self.add_usage(turn, budget, out.read, out.written, stats)
        return out

    def add_usage(self, turn: Turn, budget: Budget, read: int, written: int, stats: CallStats | None = None) -> None:
        budget.used_prompt += read
        budget.used_completion += written
        self.store.runs.add_usage(turn.run_id, read, written, stats.add_to if stats is not None else None)
