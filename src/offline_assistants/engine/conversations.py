"""Conversations: threads under the Responses face's names (the same rows, windows and KV reuse).

A conversation's items are its thread's messages, read as Responses items (engine/response_items.py). The
responses made in a conversation append their input and output messages to it.
"""

from __future__ import annotations

from typing import Any

from offline_assistants.engine.response_items import message_item, read_input
from offline_assistants.engine.threads import Threads
from offline_assistants.errors import InvalidRequest, NotFound
from offline_assistants.ids import new_id
from offline_assistants.schemas.common import ListParams, Page, merged_metadata
from offline_assistants.schemas.conversations import (
    Conversation,
    ConversationCreate,
    ConversationDeleted,
    ConversationUpdate,
    ItemsCreate,
)
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store import Store


class Conversations:
    def __init__(self, store: Store, threads: Threads) -> None:
        self.store = store
        self.threads = threads

    def _thread(self, conversation_id: str) -> None:
        if not conversation_id.startswith("conv_"):
            raise NotFound("conversation", conversation_id)
        try:
            self.store.threads.row(conversation_id)
        except NotFound:
            raise NotFound("conversation", conversation_id) from None

    def create(self, req: ConversationCreate) -> Conversation:
        messages = _messages(req.items or [], "items")
        thread = self.threads.create(ThreadCreate(messages=messages, metadata=req.metadata), kind="conversation")
        return Conversation(id=thread.id, created_at=thread.created_at, metadata=thread.metadata)

    def get(self, conversation_id: str) -> Conversation:
        self._thread(conversation_id)
        thread = self.threads.get(conversation_id)
        return Conversation(id=thread.id, created_at=thread.created_at, metadata=thread.metadata)

    def update(self, conversation_id: str, req: ConversationUpdate) -> Conversation:
        current = self.get(conversation_id)
        self.store.threads.update(conversation_id, {"metadata": merged_metadata(current.metadata, req.metadata)})
        return self.get(conversation_id)

    def delete(self, conversation_id: str) -> ConversationDeleted:
        self._thread(conversation_id)
        self.threads.delete(conversation_id)
        return ConversationDeleted(id=conversation_id)

    # --- items ---
    def add_items(self, conversation_id: str, req: ItemsCreate) -> Page[dict[str, Any]]:
        self._thread(conversation_id)
        added = [self.threads.add_message(conversation_id, m) for m in _messages(req.items, "items")]
        data = [message_item(m.model_dump(mode="json")) for m in added]
        return Page[dict[str, Any]](data=data, first_id=data[0]["id"] if data else None,
                                    last_id=data[-1]["id"] if data else None, has_more=False)

    def list_items(self, conversation_id: str, params: ListParams) -> Page[dict[str, Any]]:
        self._thread(conversation_id)
        page = self.threads.list_messages(conversation_id, params)
        data = [message_item(m.model_dump(mode="json")) for m in page.data]
        return Page[dict[str, Any]](data=data, first_id=page.first_id, last_id=page.last_id, has_more=page.has_more)

    def get_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        self._thread(conversation_id)
        try:
            message = self.threads.get_message(conversation_id, item_id)
        except NotFound:
            raise NotFound("item", item_id) from None
        return message_item(message.model_dump(mode="json"))

    def delete_item(self, conversation_id: str, item_id: str) -> Conversation:
        self.get_item(conversation_id, item_id)
        self.threads.delete_message(conversation_id, item_id)
        return self.get(conversation_id)


def _messages(items: list[dict[str, Any]], param: str) -> list[MessageCreate]:
    """Items a conversation stores: user and assistant messages (what its thread holds)."""
    try:
        given = read_input(items, new_id)
    except InvalidRequest as exc:
        raise InvalidRequest(exc.message.replace("'input[", f"'{param}["), param=(exc.param or "").replace(
            "input", param, 1), code=exc.code) from None
    if given.calls or given.outputs or given.instructions:
        raise InvalidRequest("Only user and assistant messages can be added to a conversation here; function "
                             "calls and their outputs come with the responses that make them.", param=param,
                             code="invalid_value")
    return given.messages
