"""Uploads: create, add parts, complete into a File (in the order given) or cancel; the rules and their errors."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import openai
import pytest

from offline_assistants.engine import Engine
from offline_assistants.engine.uploads import Uploads


def part_files(engine: Engine) -> list[str]:
    """The part bytes on disk, as `upload id/part id`."""
    root = engine.uploads.dir
    return sorted(f"{p.parent.name}/{p.name}" for p in root.glob("*/*"))


def on_disk(engine: Engine) -> list[str]:
    return sorted(p.name for p in engine.settings.files_dir.iterdir())


def body(exc: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, object]:
    assert isinstance(exc.value.body, dict)
    return exc.value.body


def test_create_parts_complete_in_the_order_given(client: openai.OpenAI, engine: Engine) -> None:
    up = client.uploads.create(bytes=11, filename="hello.txt", mime_type="text/plain", purpose="assistants")
    assert up.id.startswith("upload_") and up.object == "upload"
    assert (up.bytes, up.filename, up.purpose, up.status, up.file) == (11, "hello.txt", "assistants", "pending", None)
    assert up.created_at > 1_600_000_000 and up.expires_at == up.created_at + 3600
    # Sent out of order (and their ids in no sorted order): the completion's list decides.
    world = client.uploads.parts.create(up.id, data=b" world")
    hello = client.uploads.parts.create(up.id, data=b"hello")
    assert world.id.startswith("part_") and world.object == "upload.part" and world.upload_id == up.id
    assert world.created_at >= up.created_at
    assert len(part_files(engine)) == 2
    done = client.uploads.complete(up.id, part_ids=[hello.id, world.id], md5=hashlib.md5(b"hello world").hexdigest())
    assert done.id == up.id and done.status == "completed" and done.file is not None
    f = done.file
    assert (f.object, f.bytes, f.filename, f.purpose, f.status) == ("file", 11, "hello.txt", "assistants", "processed")
    assert client.files.retrieve(f.id) == f
    assert client.files.content(f.id).content == b"hello world"
    assert [x.id for x in client.files.list()] == [f.id]
    assert part_files(engine) == []  # the parts' bytes go once the file is made
    # Completed: it takes nothing more.
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(up.id, data=b"!")
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(up.id, part_ids=[hello.id, world.id])
    with pytest.raises(openai.BadRequestError):
        client.uploads.cancel(up.id)


def test_reversed_order_gives_other_bytes(client: openai.OpenAI) -> None:
    up = client.uploads.create(bytes=6, filename="ab.bin", mime_type="application/octet-stream", purpose="batch")
    a = client.uploads.parts.create(up.id, data=b"aaa")
    b = client.uploads.parts.create(up.id, data=b"bbb")
    done = client.uploads.complete(up.id, part_ids=[b.id, a.id])
    assert done.file is not None and client.files.content(done.file.id).content == b"bbbaaa"


def test_upload_file_chunked_round_trips(client: openai.OpenAI, engine: Engine, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    done = client.uploads.upload_file_chunked(file=path, mime_type="application/octet-stream", purpose="assistants",
                                              part_size=1024 * 1024, md5=hashlib.md5(data).hexdigest())
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == len(data) and done.file.filename == "blob.bin"
    assert client.files.content(done.file.id).content == data
    assert part_files(engine) == [] and on_disk(engine) == [done.file.id]
    # In memory, in the SDK's default part size (64 MB: one part), without md5.
    done = client.uploads.upload_file_chunked(file=b"small", filename="s.txt", bytes=5, mime_type="text/plain",
                                              purpose="user_data")
    assert done.file is not None and client.files.content(done.file.id).content == b"small"


def test_md5_mismatch_leaves_the_upload_pending(client: openai.OpenAI, engine: Engine) -> None:
    up = client.uploads.create(bytes=4, filename="x.txt", mime_type="text/plain", purpose="assistants")
    p = client.uploads.parts.create(up.id, data=b"data")
    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.complete(up.id, part_ids=[p.id], md5="0" * 32)
    assert body(exc)["param"] == "md5" and body(exc)["type"] == "invalid_request_error"
    # Nothing half-written: no file, the part still there, and the same upload completes with the right md5.
    assert on_disk(engine) == [] and engine.store.database.query("SELECT id FROM files") == []
    assert len(part_files(engine)) == 1
    done = client.uploads.complete(up.id, part_ids=[p.id], md5=hashlib.md5(b"data").hexdigest().upper())
    assert done.status == "completed" and done.file is not None
    assert client.files.content(done.file.id).content == b"data"


def test_sizes_must_add_up(client: openai.OpenAI, engine: Engine) -> None:
    up = client.uploads.create(bytes=10, filename="x.txt", mime_type="text/plain", purpose="assistants")
    p1 = client.uploads.parts.create(up.id, data=b"12345")
    with pytest.raises(openai.BadRequestError) as exc:  # short of the declared bytes
        client.uploads.complete(up.id, part_ids=[p1.id])
    assert body(exc)["param"] == "part_ids" and "10" in str(body(exc)["message"])
    with pytest.raises(openai.BadRequestError) as exc:  # past them: the part is refused, and not kept
        client.uploads.parts.create(up.id, data=b"1234567")
    assert body(exc)["param"] == "data"
    assert len(part_files(engine)) == 1
    p2 = client.uploads.parts.create(up.id, data=b"67890")
    with pytest.raises(openai.BadRequestError) as exc:  # a part listed twice
        client.uploads.complete(up.id, part_ids=[p1.id, p1.id])
    assert body(exc)["param"] == "part_ids"
    with pytest.raises(openai.BadRequestError):  # full: not one byte more
        client.uploads.parts.create(up.id, data=b"x")
    done = client.uploads.complete(up.id, part_ids=[p1.id, p2.id])
    assert done.file is not None and client.files.content(done.file.id).content == b"1234567890"


def test_cancel(client: openai.OpenAI, engine: Engine) -> None:
    up = client.uploads.create(bytes=10, filename="x.txt", mime_type="text/plain", purpose="assistants")
    p = client.uploads.parts.create(up.id, data=b"12345")
    cancelled = client.uploads.cancel(up.id)
    assert cancelled.id == up.id and cancelled.status == "cancelled" and cancelled.file is None
    assert part_files(engine) == [] and not (engine.uploads.dir / up.id).exists()
    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.parts.create(up.id, data=b"67890")
    assert "cancelled" in str(body(exc)["message"])
    assert part_files(engine) == []
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(up.id, part_ids=[p.id])
    with pytest.raises(openai.BadRequestError):
        client.uploads.cancel(up.id)
    assert on_disk(engine) == []


def test_expired_after_an_hour(client: openai.OpenAI, engine: Engine) -> None:
    up = client.uploads.create(bytes=5, filename="x.txt", mime_type="text/plain", purpose="assistants")
    p = client.uploads.parts.create(up.id, data=b"12345")
    engine.store.uploads.update(up.id, {"expires_at": up.created_at - 1})  # as if an hour had passed
    with pytest.raises(openai.BadRequestError) as exc:
        client.uploads.complete(up.id, part_ids=[p.id])
    assert "expired" in str(body(exc)["message"])
    client.uploads.create(bytes=1, filename="y.txt", mime_type="text/plain", purpose="assistants")  # sweeps
    assert engine.store.uploads.get(up.id).status == "expired" and part_files(engine) == []


def test_unknown_ids(client: openai.OpenAI) -> None:
    for call in (lambda: client.uploads.parts.create("upload_nope", data=b"x"),
                 lambda: client.uploads.complete("upload_nope", part_ids=[]),
                 lambda: client.uploads.cancel("upload_nope")):
        with pytest.raises(openai.NotFoundError) as exc:
            call()
        assert body(exc)["message"] == "No upload found with id 'upload_nope'."
        assert body(exc)["type"] == "invalid_request_error"
    up = client.uploads.create(bytes=1, filename="x.txt", mime_type="text/plain", purpose="assistants")
    other = client.uploads.create(bytes=1, filename="y.txt", mime_type="text/plain", purpose="assistants")
    theirs = client.uploads.parts.create(other.id, data=b"y")
    for part_id in ("part_nope", theirs.id):  # a part of another upload is no part of this one
        with pytest.raises(openai.NotFoundError) as exc:
            client.uploads.complete(up.id, part_ids=[part_id])
        assert body(exc)["message"] == f"No part found with id '{part_id}'." and body(exc)["param"] == "part_ids"


def test_bad_fields(client: openai.OpenAI, engine: Engine) -> None:
    ok = {"bytes": 1, "filename": "x.txt", "mime_type": "text/plain", "purpose": "assistants"}
    with httpx2.Client(base_url=str(client.base_url)) as http:
        for extra, param, code in (
            ({"color": "red"}, "color", "unknown_parameter"),
            ({"bytes": "1"}, "bytes", "invalid_type"),
            ({"bytes": -1}, "bytes", "integer_below_min_value"),
            ({"bytes": 9 * 1024**3}, "bytes", "integer_above_max_value"),
            ({"purpose": "assistants_output"}, "purpose", "invalid_value"),
            ({"filename": ""}, "filename", "empty_string"),
        ):
            r = http.post("uploads", json={**ok, **extra})
            assert r.status_code == 400, extra
            assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code), r.json()
        for missing in ok:
            r = http.post("uploads", json={k: v for k, v in ok.items() if k != missing})
            assert r.status_code == 400 and r.json()["error"]["code"] == "missing_required_parameter"
            assert r.json()["error"]["param"] == missing
        up = http.post("uploads", json=ok).json()
        r = http.post(f"uploads/{up['id']}/complete", json={"part_ids": [], "md": "x"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "md"
        r = http.post(f"uploads/{up['id']}/complete", json={})
        assert r.status_code == 400 and r.json()["error"]["param"] == "part_ids"
        r = http.post(f"uploads/{up['id']}/complete", json={"part_ids": "part_x"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_type"
        r = http.post(f"uploads/{up['id']}/parts", files={"file": ("a", b"x")})
        assert r.status_code == 400 and r.json()["error"]["param"] == "data"
        r = http.post(f"uploads/{up['id']}/parts", content=b"junk",
                      headers={"content-type": "multipart/form-data; boundary=zz"})
        assert r.status_code == 400
    assert part_files(engine) == []
    assert engine.store.uploads.get(up["id"]).status == "pending"


def test_part_and_file_limits(make_engine: Callable[..., Engine], make_client: Callable[..., openai.OpenAI]) -> None:
    engine = make_engine(max_file_bytes=100)
    client = make_client(engine)
    with pytest.raises(openai.APIStatusError) as exc:  # the server's cap on a file holds for the upload's bytes
        client.uploads.create(bytes=101, filename="x", mime_type="text/plain", purpose="assistants")
    assert exc.value.status_code == 413 and body(exc)["param"] == "bytes"
    engine.uploads.part_max_bytes = 8  # the real limit is 64 MB; a small one here
    up = client.uploads.create(bytes=100, filename="x", mime_type="text/plain", purpose="assistants")
    ok = client.uploads.parts.create(up.id, data=b"12345678")
    with pytest.raises(openai.APIStatusError) as exc:
        client.uploads.parts.create(up.id, data=b"123456789")
    assert exc.value.status_code == 413 and body(exc)["param"] == "data" and "8 bytes" in str(body(exc)["message"])
    with pytest.raises(openai.APIStatusError) as exc:  # refused from its Content-Length, before it is read
        client.uploads.parts.create(up.id, data=b"x" * (2 << 20))
    assert exc.value.status_code == 413
    assert part_files(engine) == [f"{up.id}/{ok.id}"]


def test_restart_keeps_pending_parts_and_drops_strays(make_engine: Callable[..., Engine],
                                                      make_client: Callable[..., openai.OpenAI]) -> None:
    engine = make_engine()
    client = make_client(engine)
    up = client.uploads.create(bytes=4, filename="x.txt", mime_type="text/plain", purpose="assistants")
    p = client.uploads.parts.create(up.id, data=b"ab")
    gone = client.uploads.create(bytes=1, filename="y.txt", mime_type="text/plain", purpose="assistants")
    (engine.uploads.dir / up.id / "part_half_written").write_bytes(b"?")  # a process that stopped mid-part
    (engine.uploads.dir / gone.id).mkdir()
    client.uploads.cancel(gone.id)
    (engine.uploads.dir / gone.id).mkdir()
    (engine.uploads.dir / gone.id / "part_x").write_bytes(b"?")
    Uploads(engine.store, engine.settings, engine.files)  # what a new process does at start-up
    assert part_files(engine) == [f"{up.id}/{p.id}"]
    p2 = client.uploads.parts.create(up.id, data=b"cd")
    done = client.uploads.complete(up.id, part_ids=[p.id, p2.id])
    assert done.file is not None and client.files.content(done.file.id).content == b"abcd"


def test_parallel_parts_never_overrun(client: openai.OpenAI, engine: Engine) -> None:
    up = client.uploads.create(bytes=10, filename="x.txt", mime_type="text/plain", purpose="assistants")

    def add(i: int) -> str | None:
        try:
            return client.uploads.parts.create(up.id, data=str(i).encode() * 3).id
        except openai.BadRequestError:
            return None

    with ThreadPoolExecutor(8) as pool:
        added = [p for p in pool.map(add, range(8)) if p is not None]
    assert len(added) == 3  # 9 of the 10 bytes; a fourth part would pass them
    assert sorted(p.split("/")[1] for p in part_files(engine)) == sorted(added)
