"""GET /v1/threads (listThreads): the extension the playground lists threads with, paged like every other list and
parsed by the official SDK's own cursor page."""

from __future__ import annotations

import openai
from openai.pagination import SyncCursorPage
from openai.types.beta import Thread


def _page(client: openai.OpenAI, **query: object) -> SyncCursorPage[Thread]:
    page: SyncCursorPage[Thread] = client.get_api_list(
        "/threads", page=SyncCursorPage[Thread], model=Thread, options={"params": query})
    return page


def test_threads_are_listed_newest_first_and_page_by_cursor(any_client: openai.OpenAI) -> None:
    made = [any_client.beta.threads.create(metadata={"n": str(i)}).id for i in range(5)]
    first = _page(any_client, limit=2)
    assert [t.id for t in first.data] == made[::-1][:2]
    assert first.has_more is True
    # The SDK's own auto-pagination walks the rest with `after`.
    assert [t.id for t in _page(any_client, limit=2)] == made[::-1]
    oldest_first = _page(any_client, order="asc", limit=10)
    assert [t.id for t in oldest_first.data] == made
    assert oldest_first.data[0].metadata == {"n": "0"}


def test_a_deleted_thread_leaves_the_list(any_client: openai.OpenAI) -> None:
    keep = any_client.beta.threads.create().id
    gone = any_client.beta.threads.create().id
    any_client.beta.threads.delete(gone)
    assert [t.id for t in _page(any_client).data] == [keep]


def test_a_bad_cursor_is_refused_with_the_list_error(any_client: openai.OpenAI) -> None:
    any_client.beta.threads.create()
    try:
        _page(any_client, after="thread_nope")
    except openai.BadRequestError as exc:
        assert exc.body is not None and "after" in str(exc.body)
    else:
        raise AssertionError("an unknown cursor was accepted")
