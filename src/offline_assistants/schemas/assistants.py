from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import (
    Metadata,
    Request,
    ResponseFormat,
    Temperature,
    ToolResources,
    Tools,
    TopP,
)

ModelName = Annotated[str, Field(min_length=1)]


ReasoningEffort = Literal["minimal", "low", "medium", "high"]


class ModelOptions(Request):
    """The options an assistant and a run both take, declared once (a run's override the assistant's)."""

    metadata: Metadata | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    response_format: ResponseFormat | None = None
    # Accepted for compatibility with the SDK's parameters; local models have no reasoning effort to set.
    reasoning_effort: ReasoningEffort | None = None


class _AssistantFields(ModelOptions):
    """What create and modify both accept; they differ only in what is required."""

    name: Annotated[str, Field(max_length=256)] | None = None
    description: Annotated[str, Field(max_length=512)] | None = None
    instructions: Annotated[str, Field(max_length=256_000)] | None = None
    tool_resources: ToolResources | None = None


class AssistantCreate(_AssistantFields):
    model: ModelName
    tools: Tools = []


class AssistantUpdate(_AssistantFields):
    model: ModelName | None = None
    tools: Tools | None = None


class Assistant(BaseModel):
    id: str
    object: Literal["assistant"] = "assistant"
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[dict[str, Any]]
    tool_resources: dict[str, Any] | None
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    response_format: Any
