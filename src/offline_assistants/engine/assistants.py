from __future__ import annotations

from collections.abc import Callable

from offline_assistants.ids import new_id, now
from offline_assistants.llm.defaults import API_DEFAULTS, SamplingDefaults
from offline_assistants.schemas.assistants import Assistant, AssistantCreate, AssistantUpdate
from offline_assistants.schemas.common import (
    Deleted,
    ListParams,
    Page,
    ToolResources,
    dump,
    dump_tools,
    merged_metadata,
)
from offline_assistants.store import Store


class Assistants:
    def __init__(self, store: Store, defaults: SamplingDefaults = API_DEFAULTS,
                 expand: Callable[[ToolResources | None], ToolResources | None] = lambda r: r) -> None:
        self.store = store
        self.defaults = defaults
        self.expand = expand  # tool_resources' inline vector_stores made into stores (engine/vector_stores.py)

    def _echo(self, assistant: Assistant) -> Assistant:
        """Unset temperature / top_p are stored as unset (a later model brings its own), and shown as the values a
        run would use now, as the real API shows its defaults."""
        if assistant.temperature is not None and assistant.top_p is not None:
            return assistant
        return assistant.model_copy(update={
            "temperature": self.defaults.temperature if assistant.temperature is None else assistant.temperature,
            "top_p": self.defaults.top_p if assistant.top_p is None else assistant.top_p,
        })

    def create(self, req: AssistantCreate) -> Assistant:
        if req.tool_resources is not None:
            self.store.files.check_tool_resources(req.tool_resources)
        resources = self.expand(req.tool_resources)
        return self._echo(self.store.assistants.insert({
            "id": new_id("assistant"),
            "created_at": now(),
            "model": req.model,
            "name": req.name,
            "description": req.description,
            "instructions": req.instructions,
            "tools": dump_tools(req.tools),
            "tool_resources": dump(resources),
            "metadata": req.metadata or {},
            "temperature": req.temperature,
            "top_p": req.top_p,
            "response_format": dump(req.response_format),
        }))

    def get(self, assistant_id: str) -> Assistant:
        return self._echo(self.store.assistants.get(assistant_id))

    def update(self, assistant_id: str, req: AssistantUpdate) -> Assistant:
        values = {}
        for field in req.model_fields_set - {"reasoning_effort"}:
            value = getattr(req, field)
            if field == "tools":
                value = dump_tools(value)
            elif field in ("tool_resources", "response_format"):
                if field == "tool_resources" and value is not None:
                    self.store.files.check_tool_resources(value)
                    value = self.expand(value)
                value = dump(value)
            elif field == "metadata":
                value = merged_metadata(self.store.assistants.get(assistant_id).metadata, value)
            elif field == "model" and value is None:
                continue
            values[field] = value
        return self._echo(self.store.assistants.update(assistant_id, values))

    def delete(self, assistant_id: str) -> Deleted:
        self.store.assistants.delete(assistant_id)
        return Deleted(id=assistant_id, object="assistant.deleted")

    def list(self, params: ListParams) -> Page[Assistant]:
        page = self.store.assistants.page(params)
        return page.model_copy(update={"data": [self._echo(a) for a in page.data]})
