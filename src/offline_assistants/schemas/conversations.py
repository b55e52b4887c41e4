"""The Conversations API's requests and objects, as openai-python's `types/conversations` has them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import Loose, Metadata, Request

MAX_ITEMS = 20  # items a create call may add at once, as documented


class ConversationCreate(Request):
    items: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_ITEMS)
    metadata: Metadata | None = None
    safety_identifier: str | None = None


class ConversationUpdate(Request):
    metadata: Metadata


class ItemsCreate(Request):
    items: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS)


class Conversation(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    created_at: int
    metadata: dict[str, str]


class ConversationDeleted(BaseModel):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class Item(Loose):
    """An item of a conversation or a response's input: a message, a function call, its output... (their fields
    as openai-python's `ConversationItem` union has them)."""

    id: str
    type: str


class ThreadConverted(BaseModel):
    """`POST /v1/threads/{thread_id}/x_conversation` (an extension): a thread copied into a new conversation, and
    which item of it each message became."""

    object: Literal["x_thread.converted"] = "x_thread.converted"
    thread_id: str
    conversation_id: str
    items: dict[str, str]  # the thread's message id -> the conversation's item id
