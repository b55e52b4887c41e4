"""The sequences of a batched context (llm/batch.py) and what their KV cells hold: which conversation each serves,
the states of conversations parked to make room, and the prefixes one conversation may take from another.

A sequence remembers the conversation it last served (`key`) and the tokens its cells hold, so the next turn of
that thread reuses the prefix. A conversation whose sequence is taken for another is parked: its cells are copied
out (`llama_state_seq_get_data`) and copied back into whichever sequence serves it next.

**A new conversation starts from another's prefix** when both begin alike: every thread of an assistant opens with
the same instructions and tool descriptions, and the decision's calibration prompt with the same system turn. The
cells are copied from the sequence (or parked state) that holds them, and only the rest is evaluated. That reuse
is exact, so a new thread's text does not depend on which threads came before it: how a prompt is cut into
batches changes its cells in the last bits, so a prompt is always cut at the same places (`cuts`: the end of its
first turn and every multiple of the chunk size), cells are taken only up to such a cut, and only from a sequence
whose cells up to there were evaluated with those very cuts (`Seat.exact`). The first turn's end is where the
first end-of-turn token stands, whatever the template; a follow-up in the same conversation reuses its own cells
to the last token in common, as before (its text was never that of a cold start).
"""

from __future__ import annotations

import ctypes
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from offline_assistants.llm.llama_params import quiet_log
from offline_assistants.llm.sampler import common_prefix


def _llama() -> Any:
    import llama_cpp

    return llama_cpp


@dataclass
class Parked:
    data: Any  # ctypes buffer with the sequence's KV cells
    size: int
    tokens: list[int]
    exact: int


@dataclass
class Seat:
    id: int
    tokens: list[int] = field(default_factory=list)  # what its KV cells hold, position by position
    key: str | None = None
    busy: bool = False
    used: float = 0.0
    exact: int = 0  # its first `exact` cells are what a cold evaluation of those tokens gives, bit for bit


def first_turn_end(tokens: list[int], is_end: Any) -> int:
    """The position after the prompt's first end-of-turn token (0: none): where its first turn, the system turn
    that every thread of an assistant shares, ends."""
    for i, token in enumerate(tokens):
        if is_end(token):
            return i + 1
    return 0


class Seats:
    """The context's sequences and the parked states, with the rules for which one serves a request."""

    def __init__(self, ctx: Any, mem: Any, vocab: Any, parallel: int, *, chunk: int, kv_states: int,
                 kv_cache_mb: int) -> None:
        self._ctx, self._mem, self._vocab = ctx, mem, vocab
        self.seats = [Seat(i) for i in range(parallel)]
        self.chunk = chunk
        self.parked: OrderedDict[str, Parked] = OrderedDict()
        self._kv_limit = kv_states
        self._kv_bytes_limit = kv_cache_mb * 1024 * 1024
        self._ends: dict[int, bool] = {}

    # --- where a prompt is cut ---
    def turn_end(self, tokens: list[int]) -> int:
        return first_turn_end(tokens, self._is_end)

    def _is_end(self, token: int) -> bool:
        end = self._ends.get(token)
        if end is None:  # asked of llama.cpp once per token id: a prompt with no turn is read to its end
            end = self._ends[token] = bool(_llama().llama_vocab_is_eog(self._vocab, token))
        return end

    def next_cut(self, prompt: list[int], fed: int, turn_end: int) -> int:
        """Where the batch that starts at `fed` ends: the next multiple of the chunk size, or the first turn's end
        when that comes first (never past the prompt)."""
        end = (fed // self.chunk + 1) * self.chunk
        if fed < turn_end < end:
            end = turn_end
        return min(end, len(prompt))

    def is_cut(self, position: int, turn_end: int) -> bool:
        return position == turn_end or position % self.chunk == 0

    # --- choosing a seat ---
    def free(self) -> list[Seat]:
        return [s for s in self.seats if not s.busy]

    def take(self, key: str | None, prompt: list[int], turn_end: int) -> tuple[Seat, int]:
        """A free seat for a request (there must be one), holding as much of `prompt` as can be kept; and how many
        of its cells are kept."""
        free = self.free()
        seat = next((s for s in free if key is not None and s.key == key), None)
        if seat is not None:  # the conversation's own cells
            keep = min(common_prefix(seat.tokens, prompt), len(prompt) - 1)
            self.truncate(seat, keep)
            return seat, keep
        # The sequence that serves no conversation, else the least recent one; its conversation is parked.
        seat = min(free, key=lambda s: (s.key is not None and bool(s.tokens), s.used))
        parked = self.parked.pop(key, None) if key is not None else None
        if parked is None:
            donor, keep = self._donor(prompt, turn_end)
            if donor is seat:
                self.park(seat, keep=keep)
            else:
                self.park(seat)
                if isinstance(donor, Seat):
                    self._copy(donor, seat, keep)
                elif donor is not None:
                    self._restore(seat, donor, keep)
        else:
            self.park(seat)
            self._restore(seat, parked, len(parked.tokens))
            keep = min(common_prefix(seat.tokens, prompt), len(prompt) - 1)
            self.truncate(seat, keep)
        seat.key = key
        return seat, len(seat.tokens)

    def _donor(self, prompt: list[int], turn_end: int) -> tuple[Seat | Parked | None, int]:
        """The sequence or parked state holding the longest exact prefix of `prompt` that ends at one of its cuts."""
        best: tuple[Seat | Parked | None, int] = (None, 0)
        holders: list[Seat | Parked] = [*self.seats, *self.parked.values()]
        for holder in holders:
            held = min(common_prefix(holder.tokens, prompt), holder.exact, len(prompt) - 1)
            keep = max((p for p in (turn_end, held // self.chunk * self.chunk) if 0 < p <= held), default=0)
            # A holder's cells are copied whole, then cut: of two that give as much, the shorter is the cheaper.
            if keep > best[1] or (keep and keep == best[1] and best[0] is not None
                                  and len(holder.tokens) < len(best[0].tokens)):
                best = (holder, keep)
        return best

    # --- moving cells ---
    def park(self, seat: Seat, *, keep: int = 0) -> None:
        """Copy the seat's conversation out (it comes back on its next turn), then keep `keep` cells."""
        L = _llama()
        if seat.key is not None and seat.tokens and self._kv_limit > 0:
            size = int(L.llama_state_seq_get_size(self._ctx, seat.id))
            data = (ctypes.c_uint8 * size)()
            written = int(L.llama_state_seq_get_data(self._ctx, data, size, seat.id))
            self.parked[seat.key] = Parked(data, written, list(seat.tokens), seat.exact)
            self.parked.move_to_end(seat.key)
            while len(self.parked) > self._kv_limit or (
                    len(self.parked) > 1 and self.kv_cache_bytes() > self._kv_bytes_limit):
                self.parked.popitem(last=False)
        seat.key = None
        self.truncate(seat, keep)

    def lend(self, source: Seat, seat: Seat, keep: int) -> None:
        """Copy `source`'s first `keep` cells into another seat (a decision's option continues them there); the
        seat's own conversation is parked first."""
        self.park(seat)
        self._copy(source, seat, keep)

    def _copy(self, donor: Seat, seat: Seat, keep: int) -> None:
        L = _llama()
        size = int(L.llama_state_seq_get_size(self._ctx, donor.id))
        data = (ctypes.c_uint8 * size)()
        written = int(L.llama_state_seq_get_data(self._ctx, data, size, donor.id))
        self._restore(seat, Parked(data, written, donor.tokens, donor.exact), keep)

    def _restore(self, seat: Seat, parked: Parked, keep: int) -> None:
        L = _llama()
        with quiet_log():  # llama.cpp logs every restore ("state_read_meta: cell_count = ...")
            restored = parked.size and int(L.llama_state_seq_set_data(self._ctx, parked.data, parked.size, seat.id))
        if restored:
            seat.tokens, seat.exact = list(parked.tokens), parked.exact
            self.truncate(seat, keep)
        else:  # could not restore: the prompt is evaluated in full
            self.truncate(seat, 0)

    def truncate(self, seat: Seat, keep: int, *, drop_beyond: bool = False) -> None:
        """Keep the seat's first `keep` cells (drop_beyond: also any cell past its tokens)."""
        if keep == 0:
            _llama().llama_memory_seq_rm(self._mem, seat.id, -1, -1)
            seat.tokens = []
        elif keep < len(seat.tokens) or drop_beyond:
            _llama().llama_memory_seq_rm(self._mem, seat.id, keep, -1)
            del seat.tokens[keep:]
        seat.exact = min(seat.exact, keep)

    def forget(self, seat: Seat) -> None:
        seat.key = None
        self.truncate(seat, 0)

    def release(self, seat: Seat) -> None:
        seat.busy = False
        seat.used = time.monotonic()

    def kv_cache_bytes(self) -> int:
        return sum(p.size for p in self.parked.values())
