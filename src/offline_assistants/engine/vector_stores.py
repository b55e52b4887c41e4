"""Vector stores as the API sees them: stores, their files and file batches, expiry, and search.

Adding a file records it `in_progress` and hands it to the indexer (engine/indexer.py); its status, the store's
file_counts and usage_bytes then follow what the indexer writes. A store with `expires_after` expires that many
days after it was last active (created, given files, searched or used by a run), as the real API does; an
expired store stays readable but is no longer searched.
"""

from __future__ import annotations

import builtins
from typing import Any

from offline_assistants.engine.indexer import Indexer
from offline_assistants.engine.search import Searcher
from offline_assistants.errors import InvalidRequest, NotFound
from offline_assistants.ids import new_id, now
from offline_assistants.retrieval.filters import validate
from offline_assistants.retrieval.ranking import query_terms
from offline_assistants.schemas.common import (
    Deleted,
    FileSearchResources,
    ListParams,
    Page,
    ToolResources,
    merged_metadata,
)
from offline_assistants.schemas.validation import parse_query
from offline_assistants.schemas.vector_stores import (
    BatchFile,
    FileBatchCreate,
    FileContent,
    FileContentPage,
    SearchPage,
    SearchResult,
    VectorStore,
    VectorStoreCreate,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileCreate,
    VectorStoreFileUpdate,
    VectorStoreSearch,
    VectorStoreUpdate,
    stored_chunking,
)
from offline_assistants.store import Store

DAY_S = 86_400
THREAD_STORE_DAYS = 7  # a store made for a thread's attachments expires a week after its last use


class VectorStores:
    def __init__(self, store: Store, indexer: Indexer, searcher: Searcher) -> None:
        self.store = store
        self.indexer = indexer
        self.searcher = searcher

    # --- stores ---
    def create(self, req: VectorStoreCreate, *, thread_id: str | None = None) -> VectorStore:
        self.store.files.check_exists(req.file_ids, "file_ids")
        ts = now()
        store_id = new_id("vector_store")
        expires_after = req.expires_after.model_dump() if req.expires_after else None
        if thread_id is not None and expires_after is None:
            expires_after = {"anchor": "last_active_at", "days": THREAD_STORE_DAYS}
        self.store.vector_stores.insert({
            "id": store_id, "created_at": ts, "name": req.name or "", "description": req.description,
            "metadata": req.metadata or {}, "expires_after": expires_after,
            "expires_at": ts + expires_after["days"] * DAY_S if expires_after else None, "last_active_at": ts,
            "thread_id": thread_id,
        })
        for file_id in dict.fromkeys(req.file_ids):
            self._add(store_id, BatchFile(file_id=file_id, chunking_strategy=req.chunking_strategy))
        return self.get(store_id)

    def get(self, store_id: str) -> VectorStore:
        return self.store.vector_stores.get(store_id, now())

    def list(self, params: ListParams) -> Page[VectorStore]:
        return self.store.vector_stores.page(params, now())

    def update(self, store_id: str, req: VectorStoreUpdate) -> VectorStore:
        current = self.get(store_id)
        values: dict[str, Any] = {}
        if "name" in req.model_fields_set and req.name is not None:
            values["name"] = req.name
        if "metadata" in req.model_fields_set:
            values["metadata"] = merged_metadata(current.metadata, req.metadata)
        if "expires_after" in req.model_fields_set:
            after = req.expires_after.model_dump() if req.expires_after else None
            values["expires_after"] = after
            anchor = current.last_active_at or current.created_at
            values["expires_at"] = anchor + after["days"] * DAY_S if after else None
        if values:
            self.store.vector_stores.update(store_id, values)
        return self.get(store_id)

    def delete(self, store_id: str) -> Deleted:
        self.store.vector_stores.delete(store_id)
        return Deleted(id=store_id, object="vector_store.deleted")

    def touch(self, store_ids: builtins.list[str]) -> None:
        """The stores were used: last_active_at moves, and with it the expiry of those that have one."""
        ts = now()
        for store_id in store_ids:
            row = self.store.vector_stores.row(store_id)
            values: dict[str, Any] = {"last_active_at": ts}
            after = row["expires_after"]
            if after:
                from offline_assistants.store.db import loads

                values["expires_at"] = ts + int(loads(after)["days"]) * DAY_S
            self.store.vector_stores.update(store_id, values)

    def live(self, store_ids: builtins.list[str]) -> builtins.list[str]:
        """Those of the stores that exist and have not expired."""
        ts = now()
        out = []
        for store_id in store_ids:
            try:
                if self.store.vector_stores.get(store_id, ts).status != "expired":
                    out.append(store_id)
            except NotFound:
                continue
        return out

    def for_run(self, assistant_id: str, thread_id: str, run_resources: dict[str, Any] | None
                ) -> builtins.list[str]:
        """The live stores a run's file search reads; using them keeps them alive (last_active_at)."""
        ids = self.live(self.store.vector_stores.attached(assistant_id, thread_id, run_resources))
        self.touch(ids)
        return ids

    def evidence(self, store_ids: builtins.list[str], request: str) -> int:
        """How many of the request's content words the stores hold: the file search decision's word prior (a
        request about what the files say shares their words; "What is the capital of France?" shares none)."""
        terms = [f'"{t}"' for t in query_terms(request)]
        return self.store.vector_stores.terms_found(terms, store_ids)

    def search_for_run(self, store_ids: builtins.list[str], query: str, max_results: int,
                       threshold: float | None, filters: dict[str, Any] | None) -> builtins.list[Any]:
        if not query.strip():
            return []
        return self.searcher.search(store_ids, [query], max_results=max_results, filters=filters,
                                    score_threshold=threshold)

    def expand(self, resources: ToolResources | None) -> ToolResources | None:
        """tool_resources with the inline `vector_stores` helper made into stores, as the real API makes them.

        Every helper is checked before the first store is made: a refused request leaves no store behind."""
        search = resources.file_search if resources is not None else None
        if resources is None or search is None or not search.vector_stores:
            return resources
        wanted = [parse_query(VectorStoreCreate, {
            "file_ids": inline.file_ids, "metadata": inline.metadata,
            **({"chunking_strategy": inline.chunking_strategy} if inline.chunking_strategy else {})})
            for inline in search.vector_stores]
        if len(search.vector_store_ids) + len(wanted) > 1:
            raise InvalidRequest("A thread or assistant can have at most 1 vector store.",
                                 param="tool_resources.file_search.vector_store_ids")
        ids = [*search.vector_store_ids, *(self.create(req).id for req in wanted)]
        return resources.model_copy(update={"file_search": FileSearchResources(vector_store_ids=ids)})

    def attach(self, thread_id: str, file_ids: builtins.list[str]) -> None:
        """Files attached to a thread's message for file search go into the thread's store, made if needed
        (it then expires 7 days after its last use, as the real API's thread stores do)."""
        if not file_ids:
            return
        thread = self.store.threads.get(thread_id)
        current = ((thread.tool_resources or {}).get("file_search") or {}).get("vector_store_ids") or []
        store_id = current[0] if current else self.store.vector_stores.thread_store(thread_id)
        if store_id is None:
            store_id = self.create(VectorStoreCreate(name=f"thread {thread_id}"), thread_id=thread_id).id
        if not current:
            resources = dict(thread.tool_resources or {})
            resources["file_search"] = {"vector_store_ids": [store_id]}
            self.store.threads.update(thread_id, {"tool_resources": resources})
        for file_id in dict.fromkeys(file_ids):
            try:
                self.store.vector_stores.file_row(store_id, file_id)
            except NotFound:
                self._add(store_id, BatchFile(file_id=file_id))

    # --- files ---
    def _add(self, store_id: str, entry: BatchFile, batch_id: str | None = None) -> VectorStoreFile:
        self.store.files.check_exists([entry.file_id], "file_id")
        created = self.store.vector_stores.insert_file({
            "id": entry.file_id, "vector_store_id": store_id, "created_at": now(), "status": "in_progress",
            "usage_bytes": 0, "chunking_strategy": stored_chunking(entry.chunking_strategy),
            "attributes": entry.attributes, "batch_id": batch_id,
        })
        self.indexer.submit(store_id, entry.file_id)
        return created

    def create_file(self, store_id: str, req: VectorStoreFileCreate) -> VectorStoreFile:
        self._check_store(store_id)
        created = self._add(store_id, BatchFile(file_id=req.file_id, attributes=req.attributes,
                                                chunking_strategy=req.chunking_strategy))
        self.touch([store_id])
        return created

    def get_file(self, store_id: str, file_id: str) -> VectorStoreFile:
        self._check_store(store_id)
        return self.store.vector_stores.get_file(store_id, file_id)

    def list_files(self, store_id: str, params: ListParams, status: str | None) -> Page[VectorStoreFile]:
        self._check_store(store_id)
        return self.store.vector_stores.page_files(store_id, params, status)

    def update_file(self, store_id: str, file_id: str, req: VectorStoreFileUpdate) -> VectorStoreFile:
        self._check_store(store_id)
        self.store.vector_stores.update_file(store_id, file_id, {"attributes": req.attributes})
        return self.store.vector_stores.get_file(store_id, file_id)

    def delete_file(self, store_id: str, file_id: str) -> Deleted:
        self._check_store(store_id)
        self.store.vector_stores.delete_file(store_id, file_id)
        return Deleted(id=file_id, object="vector_store.file.deleted")

    def file_content(self, store_id: str, file_id: str) -> FileContentPage:
        self._check_store(store_id)
        text = self.store.vector_stores.file_text(store_id, file_id)
        return FileContentPage(data=[FileContent(text=text)] if text else [])

    def _check_store(self, store_id: str) -> None:
        self.store.vector_stores.row(store_id)

    # --- batches ---
    def create_batch(self, store_id: str, req: FileBatchCreate) -> VectorStoreFileBatch:
        self._check_store(store_id)
        if req.file_ids is not None and req.files is not None:
            raise InvalidRequest("'file_ids' and 'files' are mutually exclusive.", param="files")
        entries = req.entries()
        if not entries:
            raise InvalidRequest("Missing required parameter: 'file_ids'.", param="file_ids",
                                 code="missing_required_parameter")
        self.store.files.check_exists([e.file_id for e in entries], "file_ids")
        batch_id = new_id("file_batch")
        self.store.vector_stores.insert_batch({"id": batch_id, "vector_store_id": store_id, "created_at": now(),
                                               "status": "in_progress"})
        for entry in entries:
            self._add(store_id, entry, batch_id)
        self.touch([store_id])
        return self.store.vector_stores.get_batch(store_id, batch_id)

    def get_batch(self, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        self._check_store(store_id)
        return self.store.vector_stores.get_batch(store_id, batch_id)

    def cancel_batch(self, store_id: str, batch_id: str) -> VectorStoreFileBatch:
        batch = self.get_batch(store_id, batch_id)
        if batch.status != "in_progress":
            raise InvalidRequest(f"Cannot cancel a batch with status '{batch.status}'.", param=None)
        for entry in self.store.vector_stores.page_files(store_id, ListParams(limit=100), "in_progress",
                                                         batch_id).data:
            self.store.vector_stores.update_file(store_id, entry.id, {"status": "cancelled"})
        self.store.vector_stores.set_batch_status(batch_id, "cancelled")
        return self.store.vector_stores.get_batch(store_id, batch_id)

    def list_batch_files(self, store_id: str, batch_id: str, params: ListParams,
                         status: str | None) -> Page[VectorStoreFile]:
        self.get_batch(store_id, batch_id)
        return self.store.vector_stores.page_files(store_id, params, status, batch_id)

    # --- search ---
    def search(self, store_id: str, req: VectorStoreSearch) -> SearchPage:
        self._check_store(store_id)
        if req.filters is not None:
            validate(req.filters)  # the API's 400, naming the bad part ("filters.filters[1].type")
        queries = [q for q in req.queries() if q.strip()]
        if not queries:
            raise InvalidRequest("Invalid 'query': empty string.", param="query", code="empty_string")
        if req.rewrite_query:
            # No model rewrites here: the query is cut to its content words, which is what ranking uses anyway.
            queries = [" ".join(query_terms(q)) or q for q in queries]
        threshold = req.ranking_options.score_threshold if req.ranking_options else None
        hits = self.searcher.search(self.live([store_id]), queries, max_results=req.max_num_results,
                                    filters=req.filters, score_threshold=threshold)
        self.touch([store_id])
        return SearchPage(search_query=queries, data=[
            SearchResult(file_id=h.file_id, filename=h.filename, score=round(h.score, 6),
                         attributes=h.attributes or None, content=[FileContent(text=h.text)]) for h in hits])
