"""The optional API key: with one configured, only `Authorization: Bearer <key>` gets in."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai
import pytest

from offline_assistants.api import create_app
from offline_assistants.engine import Engine
from offline_assistants.testing import in_process_client

MakeClient = Callable[..., openai.OpenAI]


def test_wrong_key_is_refused(engine: Engine, make_client: MakeClient) -> None:
    bad = make_client(engine, server_api_key="secret", api_key="wrong-key-123")
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.beta.assistants.create(model="gpt-4o")
    assert exc.value.status_code == 401
    assert exc.value.body == {"message": "Incorrect API key provided: wro****-123.", "type": "invalid_request_error",
                              "param": None, "code": "invalid_api_key"}
    assert "secret" not in str(exc.value.body)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        bad.get("/nope", cast_to=object)  # even unknown routes ask for the key first
    assert engine.store.database.query("SELECT id FROM assistants") == []


def test_right_key_works(engine: Engine, make_client: MakeClient) -> None:
    good = make_client(engine, server_api_key="secret", api_key="secret")
    a = good.beta.assistants.create(model="gpt-4o")
    assert good.beta.assistants.retrieve(a.id).id == a.id
    assert good.beta.threads.create().object == "thread"


def test_missing_key_is_refused(engine: Engine, make_client: MakeClient) -> None:
    sdk = make_client(engine, server_api_key="secret", api_key="secret")
    with httpx2.Client(base_url=str(sdk.base_url)) as http:
        r = http.get("assistants")
        assert r.status_code == 401
        error = r.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert "You didn't provide an API key" in error["message"]
        assert http.get("assistants", headers={"Authorization": "Basic secret"}).status_code == 401
        assert http.get("assistants", headers={"Authorization": "Bearer secret"}).status_code == 200
        assert http.get("assistants", headers={"Authorization": "bearer secret"}).status_code == 200


def test_no_key_configured_accepts_any(engine: Engine, make_client: MakeClient) -> None:
    for key in ("anything", "sk-local", "x"):
        c = make_client(engine, api_key=key)
        assert c.beta.threads.create().object == "thread"
    with httpx2.Client(base_url=str(c.base_url)) as http:  # and no key at all
        assert http.get("assistants").status_code == 200


def test_engine_setting_is_the_default_key(make_engine: Callable[..., Engine], make_client: MakeClient) -> None:
    engine = make_engine(api_key="from-settings")
    with pytest.raises(openai.AuthenticationError):
        make_client(engine, api_key="other").beta.assistants.list()
    assert make_client(engine, api_key="from-settings").beta.assistants.list().data == []


def test_in_process_transport_checks_the_key(engine: Engine) -> None:
    app = create_app(engine, api_key="secret")
    bad = in_process_client(app, api_key="nope", max_retries=0, _strict_response_validation=True)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.beta.threads.create()
    assert exc.value.code == "invalid_api_key"
    good = in_process_client(app, api_key="secret", max_retries=0, _strict_response_validation=True)
    assert good.beta.threads.create().object == "thread"


def test_beta_header_is_accepted(client: openai.OpenAI) -> None:
    with httpx2.Client(base_url=str(client.base_url)) as http:
        for beta in ("assistants=v2", None):
            headers = {"OpenAI-Beta": beta} if beta else {}
            r = http.post("threads", json={}, headers=headers)
            assert r.status_code == 200, r.text
    # The SDK sends the header itself, and may be told to send it again.
    t = client.beta.threads.create(extra_headers={"OpenAI-Beta": "assistants=v2"})
    assert t.object == "thread"
