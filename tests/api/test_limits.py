"""Request limits, as a new user meets them: message length and body size, refused with the real 400 (or 413) and
`param`, before anything is stored or tokenized. (Metadata, tools-per-assistant and name/description/instruction
lengths are checked in test_errors.py and the resource tests.)"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import openai
import pytest

from offline_assistants.api.endpoint import MAX_JSON_BODY_BYTES
from offline_assistants.engine import Engine
from offline_assistants.schemas.messages import MAX_MESSAGE_CHARS


def test_a_message_at_the_limit_is_taken_and_one_over_it_refused(client: openai.OpenAI, engine: Engine) -> None:
    thread = client.beta.threads.create()
    made = client.beta.threads.messages.create(thread.id, role="user", content="x" * MAX_MESSAGE_CHARS)
    assert made.content[0].text.value == "x" * MAX_MESSAGE_CHARS  # type: ignore[union-attr]
    for content in ("x" * (MAX_MESSAGE_CHARS + 1), [{"type": "text", "text": "y" * (MAX_MESSAGE_CHARS + 1)}]):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.messages.create(thread.id, role="user", content=content)  # type: ignore[arg-type]
        body = err.value.body
        assert isinstance(body, dict)
        assert body["code"] == "string_above_max_length"
        assert body["param"] in ("content", "content[0].text")
    assert len(client.beta.threads.messages.list(thread.id).data) == 1


def test_a_5_mb_message_is_refused_before_it_is_tokenized(client: openai.OpenAI, engine: Engine) -> None:
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread.id, role="user", content="word " * 1_000_000)
    assert isinstance(err.value.body, dict) and err.value.body["param"] == "content"
    with pytest.raises(openai.BadRequestError):  # the same limit on a thread's first messages
        client.beta.threads.create(messages=[{"role": "user", "content": "word " * 1_000_000}])
    assert client.beta.threads.messages.list(thread.id).data == []


@pytest.fixture
def raw(client: openai.OpenAI) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=str(client.base_url), timeout=60) as http:
        yield http


def test_a_body_over_the_cap_is_refused_with_413_by_its_length(raw: httpx2.Client) -> None:
    reply = raw.post("/assistants", content=b" " * (MAX_JSON_BODY_BYTES + 1),
                     headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_too_large"
    assert raw.get("/assistants").json()["data"] == []


def test_a_chunked_body_over_the_cap_is_refused_without_buffering_it_all(raw: httpx2.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server can only count as it reads
        piece = b'{"model": "gpt-4o", "instructions": "' + b"x" * (1 << 20)
        for _ in range(MAX_JSON_BODY_BYTES // len(piece) + 8):
            yield piece

    reply = raw.post("/assistants", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert raw.get("/assistants").json()["data"] == []
