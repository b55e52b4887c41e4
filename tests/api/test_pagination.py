"""Cursor pagination: walk a 300-message thread forwards in both orders and backwards, at every page size."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.schemas.common import ListParams
from offline_assistants.schemas.messages import MessageCreate

N = 300


@pytest.fixture
def thread_300(engine: Engine) -> tuple[str, list[str]]:
    """A thread of N messages made through the engine (HTTP adds nothing here); returns its id and the ids in order."""
    from offline_assistants.schemas.threads import ThreadCreate

    thread = engine.threads.create(ThreadCreate())
    ids = [engine.threads.add_message(thread.id, MessageCreate(role="user", content=f"message {i}")).id
           for i in range(N)]
    return thread.id, ids


Lister = Callable[..., Any]  # (limit=, order=, after=, before=) -> page with data/first_id/last_id/has_more


def walk_after(list_page: Lister, order: str, limits: Callable[[], int]) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = list_page(limit=limits(), order=order, after=after)
        ids = [m.id for m in page.data]
        assert ids, "an empty page before has_more went false"
        assert page.first_id == ids[0] and page.last_id == ids[-1]
        seen += ids
        if not page.has_more:
            return seen
        after = page.last_id


def walk_before(list_page: Lister, order: str, start: str, limits: Callable[[], int]) -> list[str]:
    """From the far end, page towards the start with `before`; pages come back in list order, so prepend them."""
    seen: list[str] = []
    before = start
    while True:
        page = list_page(limit=limits(), order=order, before=before)
        ids = [m.id for m in page.data]
        assert ids
        assert page.first_id == ids[0] and page.last_id == ids[-1]
        seen = ids + seen
        if not page.has_more:
            return seen
        before = page.first_id


def check_walks(list_page: Lister, ids: list[str], limits: Callable[[], int]) -> None:
    assert walk_after(list_page, "asc", limits) == ids
    assert walk_after(list_page, "desc", limits) == ids[::-1]
    # Backwards: an asc list read from its end, and a desc list read from its end.
    assert walk_before(list_page, "asc", ids[-1], limits) == ids[:-1]
    assert walk_before(list_page, "desc", ids[0], limits) == ids[::-1][:-1]


@pytest.mark.slow  # by its volume alone (6,000 pages): no fixture tells it; test_page_fields and the rest stay quick
def test_engine_walks_at_every_limit(engine: Engine, thread_300: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_300

    def list_page(**kw: Any) -> Any:
        return engine.threads.list_messages(thread_id, ListParams(**kw))

    for limit in range(1, 101):
        check_walks(list_page, ids, lambda: limit)  # noqa: B023


@pytest.mark.slow  # by its volume alone (1,400 requests over loopback): no fixture tells it
def test_http_walks(client: openai.OpenAI, thread_300: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_300

    def list_page(**kw: Any) -> Any:
        kw = {k: v for k, v in kw.items() if v is not None}
        return client.beta.threads.messages.list(thread_id, **kw)

    for limit in (1, 7, 100):
        check_walks(list_page, ids, lambda: limit)  # noqa: B023
    rng = random.Random(300)
    check_walks(list_page, ids, lambda: rng.randint(1, 100))  # a different page size on every page


def test_page_fields(client: openai.OpenAI, thread_300: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_300
    first = client.beta.threads.messages.list(thread_id)
    assert len(first.data) == 20  # the default limit
    assert [m.id for m in first.data] == ids[::-1][:20]  # the default order is desc
    assert first.has_more is True
    assert first.first_id == ids[-1] and first.last_id == ids[-20]  # type: ignore[attr-defined]
    last = client.beta.threads.messages.list(thread_id, order="asc", after=ids[-3], limit=100)
    assert [m.id for m in last.data] == ids[-2:]
    assert last.has_more is False
    exact = client.beta.threads.messages.list(thread_id, order="asc", after=ids[-101], limit=100)
    assert len(exact.data) == 100 and exact.has_more is False  # exactly the rest: no more
    empty = client.beta.threads.messages.list(thread_id, order="asc", after=ids[-1])
    assert empty.data == [] and empty.has_more is False
    assert empty.first_id is None and empty.last_id is None  # type: ignore[attr-defined]
    window = client.beta.threads.messages.list(thread_id, order="asc", after=ids[10], before=ids[20], limit=100)
    assert [m.id for m in window.data] == ids[11:20] and window.has_more is False
    window = client.beta.threads.messages.list(thread_id, order="desc", after=ids[20], before=ids[10], limit=5)
    assert [m.id for m in window.data] == ids[19:14:-1] and window.has_more is True


def test_sdk_auto_pagination(client: openai.OpenAI, thread_300: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_300
    assert [m.id for m in client.beta.threads.messages.list(thread_id, limit=50)] == ids[::-1]
    assert [m.id for m in client.beta.threads.messages.list(thread_id, limit=100, order="asc")] == ids
    page = client.beta.threads.messages.list(thread_id, limit=100, order="asc")
    pages = [page]
    while page.has_next_page():
        page = page.get_next_page()
        pages.append(page)
    assert [len(p.data) for p in pages] == [100, 100, 100]


def test_bad_cursor_and_limits(client: openai.OpenAI, thread_300: tuple[str, list[str]]) -> None:
    thread_id, ids = thread_300
    other = client.beta.threads.create()
    for kw, param in (({"after": "msg_nope"}, "after"), ({"before": "msg_nope"}, "before")):
        with pytest.raises(openai.BadRequestError) as exc:
            client.beta.threads.messages.list(thread_id, **kw)  # type: ignore[arg-type]
        assert exc.value.body["param"] == param  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):  # a cursor from another list
        client.beta.threads.messages.list(other.id, after=ids[0])
    for limit, code in ((101, "integer_above_max_value"), (0, "integer_below_min_value")):
        with pytest.raises(openai.BadRequestError) as exc:
            client.beta.threads.messages.list(thread_id, limit=limit)
        assert exc.value.body["param"] == "limit" and exc.value.body["code"] == code  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as exc:
        client.beta.threads.messages.list(thread_id, order="sideways")  # type: ignore[arg-type]
    assert exc.value.body["param"] == "order"  # type: ignore[index]


def test_assistants_pagination(client: openai.OpenAI, engine: Engine) -> None:
    from offline_assistants.schemas.assistants import AssistantCreate

    ids = [engine.assistants.create(AssistantCreate(model="gpt-4o", name=str(i))).id for i in range(45)]

    def list_page(**kw: Any) -> Any:
        kw = {k: v for k, v in kw.items() if v is not None}
        return client.beta.assistants.list(**kw)

    for limit in (1, 10, 44, 45, 100):
        check_walks(list_page, ids, lambda: limit)  # noqa: B023
    assert [a.id for a in client.beta.assistants.list(limit=7)] == ids[::-1]
    assert [a.id for a in client.beta.assistants.list(limit=7, order="asc")] == ids
    engine.assistants.delete(ids[5])
    assert [a.id for a in client.beta.assistants.list(limit=4, order="asc")] == ids[:5] + ids[6:]
