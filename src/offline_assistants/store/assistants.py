from __future__ import annotations

from typing import Any

from offline_assistants.errors import NotFound
from offline_assistants.schemas.assistants import Assistant
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.store.db import Database, dumps, insert, loads, update
from offline_assistants.store.pagination import paginate

JSON_FIELDS = ("tools", "tool_resources", "metadata", "response_format")


def to_assistant(row: dict[str, Any]) -> Assistant:
    values = {k: v for k, v in row.items() if k != "pk"}
    for key in JSON_FIELDS:
        values[key] = loads(values[key])
    values["response_format"] = values["response_format"] or "auto"
    return Assistant(**values)


class AssistantStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def insert(self, values: dict[str, Any]) -> Assistant:
        row = {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()}
        with self.db.write() as db:
            insert(db, "assistants", row)
        return self.get(values["id"])

    def get(self, assistant_id: str) -> Assistant:
        row = self.db.query_one("SELECT * FROM assistants WHERE id = ?", (assistant_id,))
        if row is None:
            raise NotFound("assistant", assistant_id)
        return to_assistant(row)

    def update(self, assistant_id: str, values: dict[str, Any]) -> Assistant:
        with self.db.write() as db:
            self.get(assistant_id)
            stored = {k: (dumps(v) if k in JSON_FIELDS else v) for k, v in values.items()}
            update(db, "assistants", assistant_id, stored)
        return self.get(assistant_id)

    def delete(self, assistant_id: str) -> None:
        with self.db.write() as db:
            self.get(assistant_id)
            db.execute("DELETE FROM assistants WHERE id = ?", (assistant_id,))

    def page(self, params: ListParams) -> Page[Assistant]:
        return paginate(self.db, "assistants", params, to_assistant)
