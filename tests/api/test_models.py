"""Models: the loaded model is listed, and any model name an app asks for resolves to it."""

from __future__ import annotations

import openai

from offline_assistants.engine import Engine


def test_list_includes_loaded_model(any_client: openai.OpenAI, engine: Engine) -> None:
    models = any_client.models.list()
    ids = [m.id for m in models.data]
    assert ids[0] == engine.backend.name
    assert len(ids) == len(set(ids))
    for m in models.data:
        assert m.object == "model" and isinstance(m.created, int) and m.owned_by
    assert engine.backend.name in [m.id for m in any_client.models.list()]  # auto-pagination on a plain list


def test_retrieve_any_name(any_client: openai.OpenAI, engine: Engine) -> None:
    m = any_client.models.retrieve("gpt-4o")
    assert m.id == "gpt-4o" and m.object == "model"
    assert any_client.models.retrieve(engine.backend.name).id == engine.backend.name
    assert any_client.models.retrieve("ft:gpt-4o:org:custom:id").id == "ft:gpt-4o:org:custom:id"
