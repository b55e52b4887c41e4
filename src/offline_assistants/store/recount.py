"""Keep stored message tokens in step with the loaded model's tokenizer: the store recounts, the model encodes."""

from __future__ import annotations

import logging

from offline_assistants.schemas.messages import text_of
from offline_assistants.store.db import Database, loads
from offline_assistants.store.messages import pack
from offline_assistants.store.window import Encoder

log = logging.getLogger(__name__)


def recount(db: Database, encode: Encoder, tokenizer_key: str) -> int:
    """Recount every message when the tokenizer changed since they were counted (`tokenizer_key` names the one
    `encode` uses). Returns how many were recounted."""
    row = db.query_one("SELECT value FROM meta WHERE key = 'tokenizer_key'")
    if row is not None and row["value"] == tokenizer_key:
        return 0
    total = db.query_one("SELECT count(*) AS n FROM messages")["n"]  # type: ignore[index]
    done = 0
    if total:
        log.info("the model's tokenizer changed: recounting %d stored messages", total)
    for (thread_id,) in db.db.execute("SELECT id FROM threads").fetchall():
        running = 0
        updates = []
        for pk, role, content in db.db.execute(
            "SELECT pk, role, content FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,)
        ).fetchall():
            tokens = encode(role, text_of(loads(content)))
            running += len(tokens)
            updates.append((pack(tokens), len(tokens), running, pk))
        with db.write() as w:
            w.conn.executemany("UPDATE messages SET tokens = ?, n_tokens = ?, cum_tokens = ? WHERE pk = ?", updates)
            w.execute("UPDATE threads SET cut_seq = 0 WHERE id = ?", (thread_id,))
        done += len(updates)
        if total and done % 10_000 < len(updates):
            log.info("recounted %d/%d messages", done, total)
    with db.write() as w:
        w.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('tokenizer_key', ?)", (tokenizer_key,))
    return done
