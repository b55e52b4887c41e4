"""What llm/batch.py keeps of each request in flight (a generation or a decision's scores), and what one of them
feeds a decode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from offline_assistants.llm.answer_bias import Steering
from offline_assistants.llm.backend import Sampling
from offline_assistants.llm.kv_seats import Seat
from offline_assistants.llm.lookup import Lookup, Pace


@dataclass
class Job:
    """One request in flight: a generation (with its sampling) or a score (with its options)."""

    req: int
    kind: Literal["generate", "score"]
    prompt: list[int]
    cache_key: str | None
    sampling: Sampling | None = None
    options: list[list[int]] = field(default_factory=list)
    seat: Seat | None = None
    turn_end: int = 0  # where the prompt's first turn ends: a cut (llm/kv_seats.py)
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
    lookup: Lookup | None = None  # the context drafts come from (llm/lookup.py)
    pace: Pace = field(default_factory=Pace)
    # scoring
    base: Any = None  # log-probabilities after the prompt (a numpy array over the vocabulary)
    scores: dict[int, float] = field(default_factory=dict)  # option index -> its score
    helpers: list[Seat] = field(default_factory=list)  # further sequences holding the prompt, for options


@dataclass
class Rows:
    """What one job feeds in a step: tokens on one sequence, which rows give logits, and (for a score) which
    option they are."""

    job: Job
    seat: Seat
    tokens: list[int]
    every: bool = False  # logits at every row (options, drafts), else only at the last
    option: int = -1
    first: int = 0  # the batch index of its first row (set by _decode)
