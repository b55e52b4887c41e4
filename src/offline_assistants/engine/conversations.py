"""Conversations: threads under the Responses face's names (the same rows, windows and KV reuse).

A conversation's items are its thread's messages, read as Responses items (engine/response_items.py). The
responses made in a conversation append their input and output messages to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_assistants.engine.response_items import Input, read_input, row_item
from offline_assistants.engine.threads import Threads
from offline_assistants.errors import Conflict, InvalidRequest, NotFound
from offline_assistants.ids import new_id, now
from offline_assistants.schemas.common import ListParams, Page, merged_metadata
from offline_assistants.schemas.conversations import (
    Conversation,
    ConversationCreate,
    ConversationDeleted,
    ConversationUpdate,
    ItemsCreate,
    ThreadConverted,
)
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store import Store

ItemEncoder = Callable[[dict[str, Any]], tuple[Any, str, list[int]]]  # engine/tooling.py ToolCalling.encode_item


class Conversations:
    def __init__(self, store: Store, threads: Threads, encode_item: ItemEncoder) -> None:
        self.store = store
        self.threads = threads
        self.encode_item = encode_item

    def _thread(self, conversation_id: str) -> None:
        if not conversation_id.startswith("conv_"):
            raise NotFound("conversation", conversation_id)
        try:
            self.store.threads.row(conversation_id)
        except NotFound:
            raise NotFound("conversation", conversation_id) from None

    def create(self, req: ConversationCreate) -> Conversation:
        given = _items(req.items or [], "items")
        thread = self.threads.create(ThreadCreate(metadata=req.metadata), kind="conversation")
        self.append(thread.id, given)
        return Conversation(id=thread.id, created_at=thread.created_at, metadata=thread.metadata)

    def rows(self, conversation_id: str, given: Input, *, check_ids: bool = True
             ) -> list[tuple[dict[str, Any], list[int]]]:
        """The input's messages and other items as rows of the conversation's thread, in their order, under their
        own ids: 400 for one given twice or already stored, unless the caller gives the rows ids of its own (a
        chain's history, which a client sends again each turn with the same ids)."""
        ids = [e["id"] for e in given.rows if isinstance(e, dict)]
        taken = [i for i in ids if self.store.messages.exists(i)] or [i for i in ids if ids.count(i) > 1]
        if check_ids and taken:
            raise InvalidRequest(f"Duplicate item found with id {taken[0]}.", param="items", code="invalid_value")
        out = []
        for entry in given.rows:
            if isinstance(entry, dict):
                out.append(self.threads.item_row(conversation_id, entry, *self.encode_item(entry)))
            else:
                out.append(self.threads.prepare(conversation_id, entry))
        return out

    def append(self, conversation_id: str, given: Input) -> list[dict[str, Any]]:
        rows = self.rows(conversation_id, given)
        with self.store.database.write():
            for values, tokens in rows:
                self.store.messages.insert_row(values, tokens)
        return [row_item(values) for values, _ in rows]

    def get(self, conversation_id: str) -> Conversation:
        self._thread(conversation_id)
        thread = self.threads.get(conversation_id)
        return Conversation(id=thread.id, created_at=thread.created_at, metadata=thread.metadata)

    def list_conversations(self, params: ListParams) -> Page[Conversation]:
        """Conversations, newest first by default: an extension (the real API has no list), for the playground."""
        page = self.store.threads.page_conversations(params)
        data = [Conversation(id=t.id, created_at=t.created_at, metadata=t.metadata) for t in page.data]
        return Page[Conversation](data=data, first_id=page.first_id, last_id=page.last_id, has_more=page.has_more)

    def update(self, conversation_id: str, req: ConversationUpdate) -> Conversation:
        current = self.get(conversation_id)
        self.store.threads.update(conversation_id, {"metadata": merged_metadata(current.metadata, req.metadata)})
        return self.get(conversation_id)

    def from_thread(self, thread_id: str) -> ThreadConverted:
        return from_thread(self.store, thread_id)

    def delete(self, conversation_id: str) -> ConversationDeleted:
        self._thread(conversation_id)
        self.threads.delete(conversation_id)
        return ConversationDeleted(id=conversation_id)

    # --- items ---
    def add_items(self, conversation_id: str, req: ItemsCreate) -> Page[dict[str, Any]]:
        self._thread(conversation_id)
        active = self.store.runs.active(conversation_id)
        if active is not None:
            raise Conflict(f"Can't add items to {conversation_id} while a response is in progress.")
        data = self.append(conversation_id, _items(req.items, "items"))
        return Page[dict[str, Any]](data=data, first_id=data[0]["id"] if data else None,
                                    last_id=data[-1]["id"] if data else None, has_more=False)

    def list_items(self, conversation_id: str, params: ListParams) -> Page[dict[str, Any]]:
        self._thread(conversation_id)
        return self.store.messages.page_items(conversation_id, params, row_item)

    def get_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        self._thread(conversation_id)
        try:
            return row_item(self.store.messages.decoded_row(conversation_id, item_id))
        except NotFound:
            raise NotFound("item", item_id) from None

    def delete_item(self, conversation_id: str, item_id: str) -> Conversation:
        self.get_item(conversation_id, item_id)
        self.store.messages.delete(conversation_id, item_id, items=True)
        return self.get(conversation_id)


def from_thread(store: Store, thread_id: str) -> ThreadConverted:
    """A thread's messages (their files, attachments and annotations with them) copied into a new conversation,
    which a `responses.create(conversation=...)` continues; the thread stays as it was. No model is needed: the
    messages keep their token counts."""
    thread = store.threads.get(thread_id)
    if store.runs.active(thread_id) is not None:
        raise Conflict(f"Thread {thread_id} has an active run: convert it once the run has ended.")
    conversation_id = new_id("conversation")
    store.threads.insert({"id": conversation_id, "created_at": now(), "metadata": thread.metadata,
                          "tool_resources": thread.tool_resources})
    items = store.messages.copy(thread_id, conversation_id, through_seq=store.messages.last_seq(thread_id),
                                new_id=lambda: new_id("message"))
    return ThreadConverted(thread_id=thread_id, conversation_id=conversation_id, items=items)


def _items(items: list[dict[str, Any]], param: str) -> Input:
    """What a conversation stores of `items`: messages, function calls and their outputs (system and developer
    messages belong to a response's instructions, not to a conversation here)."""
    try:
        given = read_input(items, new_id)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message.replace("'input[", f"'{param}["), param=(exc.param or "").replace(
            "input", param, 1), code=exc.code) from None
    if given.instructions:
        raise InvalidRequest("System and developer messages cannot be stored in a conversation: send them as a "
                             "response's instructions.", param=param, code="invalid_value")
    return given
