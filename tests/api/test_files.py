"""Files: upload, retrieve, list by purpose, download, delete, and the size cap."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest

from offline_assistants.engine import Engine


def on_disk(engine: Engine) -> list[str]:
    return sorted(p.name for p in engine.settings.files_dir.iterdir())


def test_upload_retrieve_download_delete(any_client: openai.OpenAI, engine: Engine) -> None:
    f = any_client.files.create(file=("a.txt", b"hello"), purpose="assistants")
    assert f.id.startswith("file-")
    assert f.object == "file"
    assert f.bytes == 5
    assert f.filename == "a.txt"
    assert f.purpose == "assistants"
    assert f.status == "processed"
    assert f.created_at > 1_600_000_000
    assert any_client.files.retrieve(f.id) == f
    assert any_client.files.content(f.id).content == b"hello"
    assert on_disk(engine) == [f.id]
    d = any_client.files.delete(f.id)
    assert d.id == f.id and d.object == "file" and d.deleted is True
    with pytest.raises(openai.NotFoundError) as exc:
        any_client.files.retrieve(f.id)
    assert exc.value.body["message"] == f"No file found with id '{f.id}'."  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        any_client.files.content(f.id)
    assert on_disk(engine) == []


def test_binary_content_round_trips(client: openai.OpenAI) -> None:
    data = bytes(range(256)) * 1000
    f = client.files.create(file=("blob.bin", data), purpose="assistants")
    assert f.bytes == len(data)
    response = client.files.with_raw_response.content(f.id)
    assert response.http_response.headers["content-type"] == "application/octet-stream"
    assert response.content == data


def test_filename_is_sanitised(client: openai.OpenAI, engine: Engine) -> None:
    f = client.files.create(file=("../../etc/evil.txt", b"x"), purpose="assistants")
    assert f.filename == "evil.txt"
    assert on_disk(engine) == [f.id]


def test_list_with_purpose_filter(any_client: openai.OpenAI) -> None:
    a = any_client.files.create(file=("a.txt", b"a"), purpose="assistants")
    v = any_client.files.create(file=("v.png", b"v"), purpose="vision")
    b = any_client.files.create(file=("b.txt", b"b"), purpose="assistants")
    assert [f.id for f in any_client.files.list().data] == [b.id, v.id, a.id]  # newest first
    assert [f.id for f in any_client.files.list(order="asc").data] == [a.id, v.id, b.id]
    assert [f.id for f in any_client.files.list(purpose="assistants").data] == [b.id, a.id]
    assert [f.id for f in any_client.files.list(purpose="vision").data] == [v.id]
    assert any_client.files.list(purpose="batch").data == []
    assert [f.id for f in any_client.files.list(limit=1)] == [b.id, v.id, a.id]  # auto-pagination


def test_list_page_sizes(client: openai.OpenAI, engine: Engine) -> None:
    # The files list takes 1 to 10,000 per page, all of them by default (the other lists stop at 100, 20 by default).
    ids = [engine.files.upload(iter([b"x"]), f"f{i}.txt", "assistants").id for i in range(25)]
    page = client.files.list()
    assert [f.id for f in page.data] == ids[::-1] and page.has_more is False
    assert len(client.files.list(limit=10_000).data) == 25
    page = client.files.list(limit=10, order="asc", after=ids[9])
    assert [f.id for f in page.data] == ids[10:20] and page.has_more is True
    for limit, code in ((10_001, "integer_above_max_value"), (0, "integer_below_min_value")):
        with pytest.raises(openai.BadRequestError) as exc:
            client.files.list(limit=limit)
        assert exc.value.body["param"] == "limit" and exc.value.body["code"] == code  # type: ignore[index]


def test_bad_purpose_and_missing_parts(client: openai.OpenAI, engine: Engine) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.files.create(file=("a.txt", b"x"), purpose="bogus")  # type: ignore[arg-type]
    assert exc.value.body["param"] == "purpose" and exc.value.body["code"] == "invalid_value"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as exc:
        client.files.create(file=("a.txt", b"x"), purpose="assistants_output")  # made by tools, not uploads
    with httpx2.Client(base_url=str(client.base_url)) as http:
        r = http.post("files", data={"purpose": "assistants"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "file"
        r = http.post("files", files={"file": ("a.txt", b"x")})
        assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
        r = http.post("files", content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = http.post("files", json={"purpose": "assistants"})
        assert r.status_code == 400
    assert on_disk(engine) == []
    assert engine.store.database.query("SELECT id FROM files") == []


def test_size_cap(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    engine = make_engine(max_file_bytes=10)
    client = make_client(engine)
    ok = client.files.create(file=("ok.txt", b"0123456789"), purpose="assistants")  # exactly the cap
    assert ok.bytes == 10
    with pytest.raises(openai.APIStatusError) as exc:
        client.files.create(file=("big.txt", b"01234567890"), purpose="assistants")
    assert exc.value.status_code == 413
    body = exc.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error" and body["param"] == "file" and body["code"] == "file_too_large"
    assert "10 bytes" in body["message"]
    assert on_disk(engine) == [ok.id]
    assert [f.id for f in client.files.list()] == [ok.id]


def test_failed_store_leaves_nothing_on_disk(any_client: openai.OpenAI, engine: Engine,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    client = any_client
    def broken(values: object) -> None:
        raise RuntimeError("disk full")

    server_log = ListHandler()
    logging.getLogger("uvicorn.error").addHandler(server_log)
    try:
        for _ in range(3):
            before = on_disk(engine)
            monkeypatch.setattr(engine.store.files, "insert", broken)
            with pytest.raises(openai.InternalServerError) as exc:
                client.files.create(file=("a.txt", b"hello"), purpose="assistants")
            assert exc.value.body == {"message": "The server had an error while processing your request.",
                                      "type": "server_error", "param": None, "code": None}
            assert on_disk(engine) == before
            monkeypatch.undo()
            # Answered in the envelope with the connection kept: the same client's next call just works.
            assert client.files.create(file=("a.txt", b"hello"), purpose="assistants").bytes == 5
    finally:
        logging.getLogger("uvicorn.error").removeHandler(server_log)
    # The error reached no further than the route: uvicorn saw no exception (it would close the connection).
    assert [r.getMessage() for r in server_log.records if "Exception in ASGI application" in r.getMessage()] == []


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_content_missing_from_disk(client: openai.OpenAI, engine: Engine) -> None:
    f = client.files.create(file=("a.txt", b"hello"), purpose="assistants")
    engine.files.path(f.id).unlink()
    with pytest.raises(openai.InternalServerError) as exc:
        client.files.content(f.id)
    assert exc.value.body == {"message": f"The content of file '{f.id}' is missing from the server's storage.",
                              "type": "server_error", "param": None, "code": None}
    # Answered in the envelope, so the connection stays usable: the next call on the same client works.
    assert client.files.retrieve(f.id).id == f.id


@pytest.mark.parametrize("name, stored", [
    ("../../etc/passwd", "passwd"), ("/abs/path/report.txt", "report.txt"), ("..", "file"),
    ("a\x00b\x01c.txt", "abc.txt"), ("x" * 10_000 + ".txt", "x" * 255), ("dir\\win\\evil.txt", "evil.txt"),
])
def test_hostile_filenames_are_sanitised_and_never_choose_a_path(engine: Any, name: str, stored: str) -> None:
    import io

    made = engine.files.upload(io.BytesIO(b"data"), name, "assistants")
    assert made.filename == stored
    path = engine.files.path(made.id)
    assert path.parent == engine.settings.files_dir and path.name == made.id and path.read_bytes() == b"data"


def test_a_traversal_name_over_the_sdk_lands_in_the_files_dir(client: Any, engine: Any) -> None:
    made = client.files.create(file=("../../outside.txt", b"hello"), purpose="assistants")
    assert made.filename == "outside.txt"
    assert sorted(p.name for p in engine.settings.files_dir.iterdir()) == [made.id]
    assert not (engine.settings.data_dir.parent / "outside.txt").exists()
