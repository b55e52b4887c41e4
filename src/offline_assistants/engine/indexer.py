"""Indexing in the background: a vector store file is extracted, chunked, embedded and written as chunks on a
worker thread of its own, so a file's status really passes through `in_progress`, and the HTTP threads and the
generation worker never wait on it. At start-up, files a previous process left in progress are queued again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_assistants.retrieval.chunking import chunk
from offline_assistants.retrieval.embeddings import Embedder, embed_chunks
from offline_assistants.retrieval.extract import InvalidFile, UnsupportedFile, extract
from offline_assistants.schemas.vector_stores import AUTO_CHUNK_TOKENS, AUTO_OVERLAP_TOKENS
from offline_assistants.store import Store

log = logging.getLogger(__name__)


class Indexer:
    def __init__(self, store: Store, embedder: Callable[[], Embedder]) -> None:
        self.store = store
        self._embedder = embedder  # loaded on first use: most servers never index anything
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for store_id, file_id in self.store.vector_stores.pending_files():
            self.submit(store_id, file_id)
        self._thread = threading.Thread(target=self._loop, name="offline-assistants-indexer", daemon=True)
        self._thread.start()

    def submit(self, store_id: str, file_id: str) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put((store_id, file_id))

    def idle(self) -> bool:
        with self._lock:
            return self._pending == 0

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.index(*item)
            except Exception:  # noqa: BLE001 - one bad file must not stop the indexer
                log.exception("indexing %s in %s", item[1], item[0])
            finally:
                with self._lock:
                    self._pending -= 1

    def index(self, store_id: str, file_id: str) -> None:
        stores = self.store.vector_stores
        try:
            row = stores.file_row(store_id, file_id)
        except Exception:  # noqa: BLE001 - deleted while queued
            return
        if row["status"] != "in_progress":
            return  # cancelled while queued
        try:
            values = self._index(store_id, file_id, row)
        except UnsupportedFile as exc:
            values = _failed("unsupported_file", str(exc))
        except InvalidFile as exc:
            values = _failed("invalid_file", str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the file, as the real API reports it
            log.exception("indexing %s", file_id)
            values = _failed("server_error", f"The file could not be indexed: {type(exc).__name__}.")
        try:
            current = stores.file_row(store_id, file_id)
        except Exception:  # noqa: BLE001 - deleted while it was being indexed
            return
        if current["status"] == "cancelled":
            stores.delete_chunks(store_id, file_id)
            return
        stores.update_file(store_id, file_id, values)

    def _index(self, store_id: str, file_id: str, row: dict[str, Any]) -> dict[str, Any]:
        file_row = self.store.files.row(file_id)
        data = Path(file_row["path"]).read_bytes()
        text = extract(data, file_row["filename"])
        strategy = self._sizes(row)
        pieces = chunk(text, *strategy)
        vectors = embed_chunks(self._embedder(), pieces)  # from the chunker's token ids when it can: ~3x faster
        self.store.vector_stores.add_chunks(store_id, file_id, [c.text for c in pieces], vectors)
        usage = len(text.encode()) + int(vectors.nbytes)
        return {"status": "completed", "last_error": None, "usage_bytes": usage, "text": text}

    @staticmethod
    def _sizes(row: dict[str, Any]) -> tuple[int, int]:
        from offline_assistants.store.db import loads

        strategy = loads(row["chunking_strategy"]) or {}
        static = strategy.get("static") or {}
        return (int(static.get("max_chunk_size_tokens", AUTO_CHUNK_TOKENS)),
                int(static.get("chunk_overlap_tokens", AUTO_OVERLAP_TOKENS)))


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "last_error": {"code": code, "message": message}}
