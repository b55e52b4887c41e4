"""The hot path: choose which of a thread's messages the model sees, without re-reading the whole thread.

Every message row carries its token count and the running sum of counts up to itself (`cum_tokens`, see
store/messages.py). So for a thread of N messages:

* the tokens from message s to the end are `total - cum_tokens(s) + n_tokens(s)`: O(1) once s is known;
* the first message whose suffix fits a budget is one seek on the (thread_id, cum_tokens) index: O(log N);
* the prompt is the kept rows' stored token blobs joined together: O(kept), no tokenizer involved.

`auto` truncation cuts with hysteresis: when the history overflows it drops back to half the budget and records
the cut on the thread, so the prompt's prefix stays byte-identical across later turns (and the model's KV cache
stays valid) until the window fills up again.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offline_assistants.schemas.messages import MessageRole, text_of
from offline_assistants.store.db import Database, loads

Encoder = Callable[[MessageRole, str], list[int]]  # a message's tokens as the model reads it


@dataclass
class Window:
    tokens: list[int]
    first_seq: int  # 0 when the thread has no messages
    messages: int
    cut_seq: int  # the thread's hysteresis cut after this choice
    first_id: str | None = None  # the oldest and newest message kept
    last_id: str | None = None


def _last(conn: Any, thread_id: str) -> tuple[int, int] | None:
    row: tuple[int, int] | None = conn.execute(
        "SELECT seq, cum_tokens FROM messages WHERE thread_id = ? AND status != 'in_progress' "
        "ORDER BY seq DESC LIMIT 1", (thread_id,)
    ).fetchone()
    return row


def _suffix_tokens(conn: Any, thread_id: str, seq: int, total: int) -> int | None:
    row = conn.execute(
        "SELECT cum_tokens - n_tokens FROM messages WHERE thread_id = ? AND seq >= ? ORDER BY seq LIMIT 1",
        (thread_id, seq),
    ).fetchone()
    return None if row is None else total - row[0]


def _first_fitting(conn: Any, thread_id: str, total: int, budget: int) -> int | None:
    """The oldest seq whose suffix (to the end) holds at most `budget` tokens; None when not even the newest fits."""
    # The message whose running sum first reaches total - budget is the last one that must go.
    row = conn.execute(
        "SELECT seq FROM messages WHERE thread_id = ? AND cum_tokens >= ? ORDER BY cum_tokens, seq LIMIT 1",
        (thread_id, total - budget),
    ).fetchone()
    if row is None:
        return None
    if total - budget <= 0:
        return 0
    nxt = conn.execute("SELECT seq FROM messages WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT 1",
                       (thread_id, row[0])).fetchone()
    return None if nxt is None else nxt[0]


def choose(
    database: Database,
    thread_id: str,
    budget: int,
    *,
    strategy: dict[str, Any] | None,
    cut_seq: int,
    encode: Encoder,
) -> Window:
    conn = database.db.conn
    last = _last(conn, thread_id)
    if last is None:
        return Window([], 0, 0, cut_seq)
    last_seq, total = last
    kind = (strategy or {}).get("type", "auto")
    if kind == "last_messages":
        n = int((strategy or {}).get("last_messages") or 1)
        row = conn.execute(
            "SELECT seq FROM messages WHERE thread_id = ? AND status != 'in_progress' ORDER BY seq DESC "
            "LIMIT 1 OFFSET ?", (thread_id, n - 1)
        ).fetchone()
        first = row[0] if row else 0
        # Still never overflow the window: inside the last N, keep what fits.
        fits = _suffix_tokens(conn, thread_id, first, total)
        if fits is not None and fits > budget:
            first = _first_fitting(conn, thread_id, total, budget) or last_seq
    else:
        first = cut_seq
        fits = _suffix_tokens(conn, thread_id, first, total)
        if fits is None or fits > budget:
            # Overflow: cut back to half the budget, so several more turns fit before the prefix changes again.
            first = _first_fitting(conn, thread_id, total, budget // 2)
            if first is None:
                first = _first_fitting(conn, thread_id, total, budget) or last_seq
            cut_seq = first
    tokens = array("i")
    count = 0
    first_id = last_id = None
    for message_id, blob, role, content, status in conn.execute(
        "SELECT id, tokens, role, content, status FROM messages WHERE thread_id = ? AND seq >= ? AND seq <= ? "
        "ORDER BY seq", (thread_id, first, last_seq)
    ):
        if status == "in_progress":
            continue
        if blob is None:  # counted by another tokenizer, or never: encode now
            tokens.extend(encode(role, text_of(loads(content))))
        else:
            tokens.frombytes(blob)
        count += 1
        first_id, last_id = first_id or message_id, message_id
    out = tokens.tolist()
    if len(out) > budget:
        # Only the newest message is left and it alone is too long: keep its tail, never overflow the window.
        out = out[len(out) - budget:] if budget > 0 else []
    return Window(out, first, count, cut_seq, first_id, last_id)
