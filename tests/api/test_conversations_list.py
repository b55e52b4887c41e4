"""GET /v1/conversations (listConversations): the extension the playground lists conversations with, as listThreads
lists threads: paged like every other list, newest first, parsed by the official SDK's own cursor page."""

from __future__ import annotations

import openai
import pytest
from openai.pagination import SyncCursorPage
from openai.types.conversations import Conversation


def _page(client: openai.OpenAI, **query: object) -> SyncCursorPage[Conversation]:
    page: SyncCursorPage[Conversation] = client.get_api_list(
        "/conversations", page=SyncCursorPage[Conversation], model=Conversation, options={"params": query})
    return page


def test_conversations_are_listed_newest_first_without_the_threads(any_client: openai.OpenAI) -> None:
    made = []
    for i in range(4):
        made.append(any_client.conversations.create(metadata={"n": str(i)}).id)
        any_client.beta.threads.create()  # a thread between each: not a conversation, so never listed
    first = _page(any_client, limit=2)
    assert [c.id for c in first.data] == made[::-1][:2] and first.has_more is True
    assert [c.id for c in _page(any_client, limit=2)] == made[::-1]  # the SDK walks the rest with `after`
    oldest_first = _page(any_client, order="asc", limit=10)
    assert [c.id for c in oldest_first.data] == made and oldest_first.has_more is False
    assert oldest_first.data[0].metadata == {"n": "0"} and oldest_first.data[0].object == "conversation"
    any_client.conversations.delete(made[0])
    assert [c.id for c in _page(any_client, order="asc").data] == made[1:]  # a deleted one leaves the list


def test_a_thread_is_no_cursor_in_the_list(any_client: openai.OpenAI) -> None:
    any_client.conversations.create()
    thread = any_client.beta.threads.create()
    with pytest.raises(openai.BadRequestError, match="after"):
        _page(any_client, after=thread.id)
