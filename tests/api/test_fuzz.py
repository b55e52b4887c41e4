"""The fuzz campaign: schemathesis drives every operation of our own /openapi.json against a live loopback server.

Each operation gets valid and invalid inputs (schemathesis' positive and negative generation: wrong types, missing
and unknown fields, huge and odd strings), with a fixed seed and a bounded budget, and path ids that are random,
real, or real but of the wrong kind. Every reply must be a non-5xx that matches its declared schema and content
type, invalid input must be refused, no connection may drop, and every refused request must leave the database as
it was: nothing committed (SQLite's data_version, read on a connection of our own) and no file written.

OA_FUZZ_EXAMPLES sets the examples per operation (default 25: about a minute on 2 cores); raise it outside CI.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import pytest
import requests

from offline_assistants.api import create_app
from offline_assistants.api.app import ROUTES
from offline_assistants.api.openapi import document
from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.testing import serve

# schemathesis and hypothesis are imported where they are used: importing them takes seconds, which every run of
# the edit loop (`-m "not slow"`, which collects this file to leave it out) would pay.
if TYPE_CHECKING:
    from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("OA_FUZZ_EXAMPLES", "25"))
SEED = 20261202
OPERATION_IDS = [op["operationId"] for item in document(ROUTES)["paths"].values() for op in item.values()]
BODY_IDS = ("assistant_id", "file_id")
# What can still commit after its request was answered (a batch's status is derived from its files').
_ACTIVE = {"runs": "status IN ('queued', 'in_progress', 'cancelling')",
           "vector_store_files": "status = 'in_progress'",
           # A background response's stream is stored a moment after its run ends (api/response_recording.py).
           "responses": "background = 1 AND NOT EXISTS (SELECT 1 FROM response_events e WHERE e.response_id = "
                        "responses.id AND json_extract(e.event, '$.type') IN ('response.completed', "
                        "'response.incomplete', 'response.failed', 'error'))"}


@dataclass
class Target:
    root: str
    schema: Any
    sdk: openai.OpenAI
    db: sqlite3.Connection
    files_dir: Path
    http: requests.Session

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until no background work (a run, an indexing) can commit while a case runs."""
        deadline = time.monotonic() + timeout_s
        while any(self.db.execute(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1").fetchone()  # noqa: S608
                  for table, where in _ACTIVE.items()):
            assert time.monotonic() < deadline, "background work did not settle"
            time.sleep(0.02)

    def state(self) -> tuple[int, frozenset[str]]:
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        return version, frozenset(str(p) for p in self.files_dir.rglob("*"))

    def objects(self) -> dict[str, str]:
        """One real object of every kind, by the path parameter that names it: fresh for each operation, since
        the campaign deletes what it finds."""
        sdk = self.sdk
        assistant = sdk.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}])
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        message = sdk.beta.threads.messages.list(thread.id).data[0]
        run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
        step = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
        file = sdk.files.create(file=("notes.txt", b"The office opens at nine."), purpose="assistants")
        store = sdk.vector_stores.create(name="fuzz", file_ids=[file.id])
        batch = sdk.vector_stores.file_batches.create(store.id, file_ids=[file.id])
        upload = sdk.uploads.create(bytes=3, filename="u.txt", mime_type="text/plain", purpose="assistants")
        container = sdk.containers.create(name="fuzz", file_ids=[file.id])
        response = sdk.responses.create(model="gpt-4o", input="hello")  # fails: no model replies here
        conversation = sdk.conversations.create(items=[{"role": "user", "content": "hello"}])
        item = sdk.conversations.items.list(conversation.id).data[0]
        return {"response_id": response.id, "conversation_id": conversation.id, "item_id": item.id,
                "assistant_id": assistant.id, "thread_id": thread.id, "message_id": message.id, "run_id": run.id,
                "step_id": step[0].id if step else "step_none", "file_id": file.id, "vector_store_id": store.id,
                "batch_id": batch.id, "upload_id": upload.id, "container_id": container.id, "model": "gpt-4o"}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    import schemathesis

    from offline_assistants.tools.code_interpreter import JupyterCodeRunner

    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    # A code runner for the containers' directories; no kernel starts: no model writes code here.
    engine = Engine(Settings(data_dir=data_dir), CannedBackend(fail_with="fuzzing: no model replies"),
                    code_runner=JupyterCodeRunner(data_dir / "sandbox", sandbox="off"))
    with serve(create_app(engine)) as url:
        root = url.removesuffix("/v1")
        sdk = openai.OpenAI(base_url=url, api_key="sk-fuzz", max_retries=0)
        db = sqlite3.connect(engine.settings.database, isolation_level=None, check_same_thread=False)
        with requests.Session() as http:
            yield Target(root, schemathesis.openapi.from_url(root + "/openapi.json"), sdk, db,
                         engine.settings.files_dir, http)
        db.close()
        sdk.close()
    engine.close()


def _ids(case: Any, real: dict[str, str], data: st.DataObject, *, valid: bool) -> None:
    """Path ids as generated, or real ones: mostly of the kind the parameter names, sometimes of another kind.
    Ids a valid body refers to may become real too, so it can get past its 404s (an invalid body is left as it
    was made: a substitution could make it valid)."""
    from hypothesis import strategies as st

    kinds = list(real.values())
    for name in list(case.path_parameters or {}):
        pick = data.draw(st.sampled_from(["generated", "right", "right", "wrong"]), label=name)
        if pick == "right":
            case.path_parameters[name] = real[name]
        elif pick == "wrong":
            case.path_parameters[name] = data.draw(st.sampled_from([k for k in kinds if k != real[name]]))
    if valid and isinstance(case.body, dict):
        for name, value in list(case.body.items()):
            if name in BODY_IDS and isinstance(value, str) and data.draw(st.booleans(), label=f"real {name}"):
                case.body[name] = real[name]
            elif name == "file_ids" and isinstance(value, list) and data.draw(st.booleans(), label="real files"):
                case.body[name] = [real["file_id"]]


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
def test_fuzz(target: Target, operation_id: str) -> None:
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
    )

    checks = [not_a_server_error, response_schema_conformance, content_type_conformance, negative_data_rejection]
    operation = target.schema.find_operation_by_id(operation_id)
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE).map(lambda case: (case, True)),
                      operation.as_strategy(GenerationMode.NEGATIVE).map(lambda case: (case, False)))
    real = target.objects()

    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(made=cases, data=st.data())
    def campaign(made: tuple[Any, bool], data: st.DataObject) -> None:
        case, valid = made
        _ids(case, real, data, valid=valid)
        target.settle()
        before = target.state()
        response = case.call(base_url=target.root, session=target.http, timeout=60)
        case.validate_response(response, checks=checks)
        if 400 <= response.status_code < 500:
            assert target.state() == before, f"{response.status_code} {case.method} {case.formatted_path}: " \
                                             "a refused request changed the database or the files"

    campaign()


# Bodies no generator is likely to write, each refused by every operation that takes a JSON body.
HOSTILE = {
    "not json": b"this is not json",
    "a NUL byte": b"\x00",
    "bad utf-8": b"\xff\xfe{",
    "deep arrays": b"[" * 100_000,
    "deep objects": b'{"a":' * 50_000,
    "a lone surrogate": b'{"metadata": {"k": "\\ud800"}}',
    "an array body": b"[]",
    "null": b"null",
    "a string body": b'"body"',
    "an infinite number": b'{"temperature": 1e999, "metadata": {"k": 1}}',
    "a huge string where an object goes": b'{"metadata": "' + b"\xf0\x9f\x98\x80" * 300_000 + b'"}',
}
JSON_BODIES = [op["operationId"] for item in document(ROUTES)["paths"].values() for op in item.values()
               if "application/json" in op.get("requestBody", {}).get("content", {})]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_are_refused_and_change_nothing(target: Target, name: str) -> None:
    real = target.objects()
    target.settle()
    for operation_id in JSON_BODIES:
        operation = target.schema.find_operation_by_id(operation_id)
        path = operation.path.format(**{k: real[k] for k in real if "{" + k + "}" in operation.path})
        before = target.state()
        reply = target.http.post(target.root + path, data=HOSTILE[name],
                                 headers={"content-type": "application/json"}, timeout=60)
        assert 400 <= reply.status_code < 500, (operation_id, reply.status_code, reply.text[:200])
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
        assert target.state() == before, operation_id
