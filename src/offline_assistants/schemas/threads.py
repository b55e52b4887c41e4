from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import Metadata, Request, ToolResources
from offline_assistants.schemas.messages import MessageCreate


class ThreadCreate(Request):
    messages: Annotated[list[MessageCreate], Field(max_length=32)] = []
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


class ThreadUpdate(Request):
    tool_resources: ToolResources | None = None
    metadata: Metadata | None = None


class Thread(BaseModel):
    id: str
    object: Literal["thread"] = "thread"
    created_at: int
    metadata: dict[str, str]
    tool_resources: dict[str, Any] | None
