"""/v1/conversations: conversations and their items (engine/conversations.py: threads under other names).

`GET /v1/conversations` (listConversations) is an extension, as listThreads is: the real API has no list of
conversations. It pages like every other list, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, list_params
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.conversations import (
    Conversation,
    ConversationCreate,
    ConversationDeleted,
    ConversationUpdate,
    Item,
    ItemsCreate,
    ThreadConverted,
)

CONVERSATION = "/v1/conversations/{conversation_id}"
ITEMS = CONVERSATION + "/items"
ITEM = ITEMS + "/{item_id}"


async def create_conversation(request: Request) -> Response:
    req = await json_body(request, ConversationCreate)
    return await answer(engine(request).conversations.create, req)


async def list_conversations(request: Request) -> Response:
    return await answer(engine(request).conversations.list_conversations, list_params(request))


async def get_conversation(request: Request) -> Response:
    return await answer(engine(request).conversations.get, request.path_params["conversation_id"])


async def update_conversation(request: Request) -> Response:
    req = await json_body(request, ConversationUpdate)
    return await answer(engine(request).conversations.update, request.path_params["conversation_id"], req)


async def delete_conversation(request: Request) -> Response:
    return await answer(engine(request).conversations.delete, request.path_params["conversation_id"])


async def convert_thread(request: Request) -> Response:
    return await answer(engine(request).conversations.from_thread, request.path_params["thread_id"])


async def create_items(request: Request) -> Response:
    req = await json_body(request, ItemsCreate)
    return await answer(engine(request).conversations.add_items, request.path_params["conversation_id"], req)


async def list_items(request: Request) -> Response:
    return await answer(engine(request).conversations.list_items, request.path_params["conversation_id"],
                        list_params(request))


async def get_item(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).conversations.get_item, p["conversation_id"], p["item_id"])


async def delete_item(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).conversations.delete_item, p["conversation_id"], p["item_id"])


routes = [
    Operation("POST", "/v1/threads/{thread_id}/x_conversation", convert_thread,
              Doc("x_convertThread", "Copy a thread's messages into a new conversation (an extension: the real API "
                  "has no migration).", ThreadConverted)),
    Operation("POST", "/v1/conversations", create_conversation,
              Doc("createConversation", "Create a conversation.", Conversation, body=ConversationCreate)),
    Operation("GET", "/v1/conversations", list_conversations,
              Doc("listConversations", "List conversations, newest first (an extension: the real API has no such "
                  "list).", Page[Conversation], query=ListParams)),
    Operation("GET", CONVERSATION, get_conversation, Doc("getConversation", "Retrieve a conversation.",
                                                         Conversation)),
    Operation("POST", CONVERSATION, update_conversation,
              Doc("updateConversation", "Update a conversation's metadata.", Conversation, body=ConversationUpdate)),
    Operation("DELETE", CONVERSATION, delete_conversation,
              Doc("deleteConversation", "Delete a conversation.", ConversationDeleted)),
    Operation("POST", ITEMS, create_items,
              Doc("createConversationItems", "Add items to a conversation.", Page[Item], body=ItemsCreate)),
    Operation("GET", ITEMS, list_items,
              Doc("listConversationItems", "List a conversation's items.", Page[Item], query=ListParams)),
    Operation("GET", ITEM, get_item, Doc("getConversationItem", "Retrieve a conversation item.", Item)),
    Operation("DELETE", ITEM, delete_item,
              Doc("deleteConversationItem", "Delete a conversation item.", Conversation)),
]
