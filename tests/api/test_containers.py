"""Containers and their files through the official SDK (`client.containers`, `client.containers.files`): shapes,
paging, uploads and file_ids, content, expiry, errors. A real code runner holds each container's /mnt/data; no
kernel starts in these tests (no code runs). test_containers_kernel.py runs code in them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import openai
import pytest
from sdk_errors import sdk_error

from offline_assistants.engine import Engine
from offline_assistants.ids import now
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.tools.code_interpreter import JupyterCodeRunner


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[JupyterCodeRunner]:
    # A kernel starts only when code runs, and none does here: these tests cost no kernel.
    made = JupyterCodeRunner(tmp_path / "sandbox", sandbox="off")
    yield made
    made.close()


@pytest.fixture
def cengine(make_engine: Callable[..., Engine], runner: JupyterCodeRunner) -> Engine:
    return make_engine(CannedBackend(fail_with="no model: these tests run no run"), code_runner=runner)


@pytest.fixture
def sdk(cengine: Engine, make_client: Callable[..., openai.OpenAI]) -> openai.OpenAI:
    return make_client(cengine)


def _workdir(runner: JupyterCodeRunner, container_id: str) -> Path:
    return runner.root_dir / container_id


def test_create_retrieve_list_delete(sdk: openai.OpenAI, runner: JupyterCodeRunner) -> None:
    before = now()
    made = sdk.containers.create(name="analysis")
    assert made.id.startswith("cntr_") and made.object == "container" and made.name == "analysis"
    assert made.status == "running" and before <= made.created_at <= now()
    assert made.last_active_at is not None and made.last_active_at >= made.created_at
    assert made.expires_after is not None  # the documented default: 20 idle minutes
    assert (made.expires_after.anchor, made.expires_after.minutes) == ("last_active_at", 20)
    assert made.memory_limit == "1g"  # the documented default
    assert made.network_policy is not None and made.network_policy.type == "disabled"
    got = sdk.containers.retrieve(made.id)
    assert got.model_dump(exclude={"last_active_at"}) == made.model_dump(exclude={"last_active_at"})
    assert _workdir(runner, made.id).is_dir()

    other = sdk.containers.create(name="other", expires_after={"anchor": "last_active_at", "minutes": 5},
                                  memory_limit="4g")
    assert other.expires_after is not None and other.expires_after.minutes == 5 and other.memory_limit == "4g"
    assert [c.id for c in sdk.containers.list()] == [other.id, made.id]
    page = sdk.containers.list(order="asc", limit=1)
    assert [c.id for c in page.data] == [made.id] and page.has_more
    assert [c.id for c in page.get_next_page().data] == [other.id]
    assert [c.id for c in sdk.containers.list(name="other")] == [other.id]  # the real API's name filter

    deleted = sdk.containers.with_raw_response.delete(made.id).http_response.json()
    assert deleted == {"id": made.id, "object": "container.deleted", "deleted": True}
    assert not _workdir(runner, made.id).exists()
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.containers.retrieve(made.id)
    assert sdk_error(exc)["message"] == f"No container found with id '{made.id}'."
    assert [c.id for c in sdk.containers.list()] == [other.id]


def test_files_upload_file_id_list_retrieve_content_delete(sdk: openai.OpenAI, runner: JupyterCodeRunner) -> None:
    uploaded = sdk.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="user_data")
    container = sdk.containers.create(name="files", file_ids=[uploaded.id])
    workdir = _workdir(runner, container.id)
    (copied,) = sdk.containers.files.list(container.id)
    assert copied.id.startswith("cfile_") and copied.object == "container.file"
    assert (copied.container_id, copied.path, copied.bytes, copied.source) == (
        container.id, "/mnt/data/data.csv", 8, "user")
    assert (workdir / "data.csv").read_bytes() == b"a,b\n1,2\n"

    notes = sdk.containers.files.create(container.id, file=("notes.txt", b"hello"))
    assert (notes.path, notes.bytes, notes.source) == ("/mnt/data/notes.txt", 5, "user")
    assert (workdir / "notes.txt").read_bytes() == b"hello"
    again = sdk.files.create(file=("again.txt", b"xyz"), purpose="assistants")
    by_id = sdk.containers.files.create(container.id, file_id=again.id)  # the JSON form
    assert (by_id.path, by_id.bytes) == ("/mnt/data/again.txt", 3)

    assert [f.id for f in sdk.containers.files.list(container.id)] == [by_id.id, notes.id, copied.id]
    assert [f.id for f in sdk.containers.files.list(container.id, order="asc", limit=2).data] == [copied.id, notes.id]
    assert sdk.containers.files.retrieve(notes.id, container_id=container.id).model_dump() == notes.model_dump()
    content = sdk.containers.files.content.retrieve(notes.id, container_id=container.id)
    assert content.read() == b"hello"
    assert content.response.headers["content-type"] == "application/octet-stream"

    gone = sdk.containers.files.with_raw_response.delete(notes.id, container_id=container.id).http_response.json()
    assert gone == {"id": notes.id, "object": "container.file.deleted", "deleted": True}
    assert not (workdir / "notes.txt").exists()
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.retrieve(notes.id, container_id=container.id)
    assert [f.id for f in sdk.containers.files.list(container.id)] == [by_id.id, copied.id]
    assert sdk.files.retrieve(again.id).id == again.id  # a copy: the uploaded file itself stays


def test_content_of_a_big_file_with_a_name_beyond_ascii(sdk: openai.OpenAI) -> None:
    container = sdk.containers.create(name="big")
    data = os.urandom(3 * 2**20 + 5)  # several chunks
    made = sdk.containers.files.create(container.id, file=("données é.bin", data))
    assert (made.path, made.bytes) == ("/mnt/data/données é.bin", len(data))
    content = sdk.containers.files.content.retrieve(made.id, container_id=container.id)
    assert content.read() == data
    assert content.response.headers["content-disposition"] == (
        "attachment; filename*=utf-8''donn%C3%A9es%20%C3%A9.bin")


def test_a_file_at_a_taken_path_replaces_it(sdk: openai.OpenAI, runner: JupyterCodeRunner) -> None:
    container = sdk.containers.create(name="replace")
    first = sdk.containers.files.create(container.id, file=("a.txt", b"one"))
    second = sdk.containers.files.create(container.id, file=("dir/../a.txt", b"second"))  # only the name counts
    assert second.path == "/mnt/data/a.txt" and second.id != first.id
    assert [f.id for f in sdk.containers.files.list(container.id)] == [second.id]
    assert sdk.containers.files.content.retrieve(second.id, container_id=container.id).read() == b"second"


def test_operations_keep_a_container_alive_and_the_sweep_expires_an_idle_one(
        sdk: openai.OpenAI, cengine: Engine, runner: JupyterCodeRunner) -> None:
    container = sdk.containers.create(name="idle", expires_after={"anchor": "last_active_at", "minutes": 1})
    upload = sdk.containers.files.create(container.id, file=("keep.txt", b"data"))
    assert cengine.containers.expire(now() + 59) == []  # not idle for a minute yet
    cengine.store.containers.touch(container.id, now() - 50)  # as if last used 50 s ago
    assert sdk.containers.files.retrieve(upload.id, container_id=container.id).id == upload.id  # active again
    assert sdk.containers.retrieve(container.id).last_active_at >= now() - 1  # type: ignore[operator]
    assert cengine.containers.expire(now() + 30) == []  # had it not been touched, 80 s would have passed

    assert cengine.containers.expire(now() + 61) == [container.id]
    expired = sdk.containers.retrieve(container.id)  # its metadata stays, as documented
    assert expired.status == "expired" and expired.name == "idle"
    assert not _workdir(runner, container.id).exists()  # its data is discarded, as documented
    for call in (lambda: sdk.containers.files.list(container.id),
                 lambda: sdk.containers.files.create(container.id, file=("x.txt", b"x")),
                 lambda: sdk.containers.files.content.retrieve(upload.id, container_id=container.id)):
        with pytest.raises(openai.BadRequestError) as exc:
            call()
        assert sdk_error(exc) == {"message": "Container is expired.", "type": "invalid_request_error",
                                  "param": None, "code": None}
    with pytest.raises(Exception, match="Container is expired"):
        cengine.containers.session(container.id)
    assert cengine.containers.expire(now() + 3600) == []  # once
    sdk.containers.delete(container.id)
    assert list(sdk.containers.list()) == []


def test_an_overdue_container_is_found_expired_before_any_sweep(sdk: openai.OpenAI, cengine: Engine,
                                                               runner: JupyterCodeRunner) -> None:
    container = sdk.containers.create(name="late", expires_after={"anchor": "last_active_at", "minutes": 1})
    sdk.containers.files.create(container.id, file=("a.txt", b"a"))
    cengine.store.containers.touch(container.id, now() - 3600)
    assert sdk.containers.retrieve(container.id).status == "expired"
    assert not _workdir(runner, container.id).exists()


def test_errors(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.containers.retrieve("cntr_missing")
    assert sdk_error(exc)["message"] == "No container found with id 'cntr_missing'."
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.list("cntr_missing")
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.create("cntr_missing", file=("a.txt", b"a"))
    with pytest.raises(openai.NotFoundError):
        sdk.containers.delete("cntr_missing")
    container = sdk.containers.create(name="errors")
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.containers.files.retrieve("cfile_missing", container_id=container.id)
    assert sdk_error(exc)["message"] == "No container file found with id 'cfile_missing'."
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.content.retrieve("cfile_missing", container_id=container.id)
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.containers.files.create(container.id, file_id="file-missing")
    assert sdk_error(exc)["param"] == "file_id"
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.containers.create(name="x", file_ids=["file-missing"])
    assert sdk_error(exc)["param"] == "file_ids"

    bad = [
        ({"expires_after": {"anchor": "last_active_at", "minutes": 0}}, "expires_after.minutes"),
        ({"expires_after": {"anchor": "created_at", "minutes": 5}}, "expires_after.anchor"),
        ({"expires_after": {"anchor": "last_active_at"}}, "expires_after.minutes"),
        ({"memory_limit": "2g"}, "memory_limit"),
        ({"network_policy": {"type": "allowlist", "allowed_domains": ["pypi.org"]}}, "network_policy.type"),
        ({"skills": [{"type": "skill_reference", "skill_id": "skill_1"}]}, "skills"),
        ({"colour": "blue"}, "colour"),
    ]
    for extra, param in bad:
        with pytest.raises(openai.BadRequestError) as exc:
            sdk.containers.create(name="bad", extra_body=extra)
        assert sdk_error(exc)["param"] == param, extra
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.post("/containers", body={}, cast_to=object)
    assert sdk_error(exc)["param"] == "name"
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.containers.files.create(container.id)  # neither a file nor a file_id
    with httpx2.Client(base_url=str(sdk.base_url)) as http:
        path = f"containers/{container.id}/files"
        both = http.post(path, files={"file": ("a.txt", b"a")}, data={"file_id": "file-x"})
        assert both.status_code == 400 and both.json()["error"]["param"] == "file_id"
        neither = http.post(path, files={"other": ("a.txt", b"a")})
        assert neither.status_code == 400 and neither.json()["error"]["param"] == "file"
        garbled = http.post(path, content=b"garbage", headers={"content-type": "multipart/form-data; boundary=zz"})
        assert garbled.status_code == 400
    assert [c.id for c in sdk.containers.list()] == [container.id]  # no bad request made one
    assert list(sdk.containers.files.list(container.id)) == []


def test_upload_over_the_size_limit(make_engine: Callable[..., Engine], runner: JupyterCodeRunner,
                                    make_client: Callable[..., openai.OpenAI]) -> None:
    engine = make_engine(code_runner=runner, max_file_bytes=10)
    sdk = make_client(engine)
    container = sdk.containers.create(name="small")
    sdk.containers.files.create(container.id, file=("ok.txt", b"0123456789"))  # exactly the cap
    with pytest.raises(openai.APIStatusError) as exc:
        sdk.containers.files.create(container.id, file=("big.txt", b"01234567890"))
    assert exc.value.status_code == 413 and sdk_error(exc)["code"] == "file_too_large"
    assert [f.path for f in sdk.containers.files.list(container.id)] == ["/mnt/data/ok.txt"]
    assert sorted(os.listdir(_workdir(runner, container.id))) == ["ok.txt"]


def test_without_a_code_interpreter_no_container_is_made(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.containers.create(name="none")
    assert "--no-code-interpreter" in sdk_error(exc)["message"]
    assert list(client.containers.list()) == []


def test_content_never_leaves_the_container(sdk: openai.OpenAI, cengine: Engine, runner: JupyterCodeRunner,
                                            tmp_path: Path) -> None:
    """Code may swap a registered file, or a directory on its way, for a symlink to a file of the server's: the
    server neither reads nor removes what it points to."""
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("server secret")
    container = sdk.containers.create(name="links")
    workdir = _workdir(runner, container.id)
    plain = sdk.containers.files.create(container.id, file=("secret.txt", b"mine"))
    (workdir / "sub").mkdir()
    (workdir / "sub" / "secret.txt").write_text("also mine")  # as code would write it
    (nested,) = cengine.containers.sync_files(container.id)
    assert (nested.path, nested.source, nested.bytes) == ("/mnt/data/sub/secret.txt", "assistant", 9)

    (workdir / "sub" / "secret.txt").unlink()
    (workdir / "sub").rmdir()
    (workdir / "sub").symlink_to(secret.parent)
    sdk.containers.files.delete(nested.id, container_id=container.id)
    assert secret.read_text() == "server secret"

    (workdir / "secret.txt").unlink()
    (workdir / "secret.txt").symlink_to(secret)
    with pytest.raises(openai.NotFoundError):
        sdk.containers.files.content.retrieve(plain.id, container_id=container.id)
    assert list(sdk.containers.files.list(container.id)) == []  # the look found it no file any more
    assert secret.read_text() == "server secret"
