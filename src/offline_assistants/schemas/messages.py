from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import Metadata, Request

MessageStatus = Literal["in_progress", "incomplete", "completed"]
# A message's text is at most 256,000 characters, the limit OpenAI gave the Assistants API with v2 (v1's spec said
# 32,768). Past it the request is refused at once, before anything is tokenized: a 5 MB message would otherwise
# hold a worker for half a minute.
MAX_MESSAGE_CHARS = 256_000
MessageText = Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]
MessageRole = Literal["user", "assistant"]


class ImageFile(Request):
    file_id: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageURL(Request):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(Request):
    type: Literal["text"]
    text: MessageText


class ImageFilePart(Request):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageURLPart(Request):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImageFilePart | ImageURLPart, Field(discriminator="type")]


class AttachmentTool(Request):
    type: Literal["code_interpreter", "file_search"]


class Attachment(Request):
    file_id: str
    tools: list[AttachmentTool] = []


class MessageCreate(Request):
    role: MessageRole
    content: MessageText | Annotated[list[ContentPart], Field(min_length=1)]
    attachments: list[Attachment] | None = None
    metadata: Metadata | None = None


class MessageUpdate(Request):
    metadata: Metadata | None = None


class MessageListParams(BaseModel):
    run_id: str | None = None


class Message(BaseModel):
    id: str
    object: Literal["thread.message"] = "thread.message"
    created_at: int
    thread_id: str
    status: MessageStatus
    incomplete_details: dict[str, Any] | None
    completed_at: int | None
    incomplete_at: int | None
    role: MessageRole
    content: list[dict[str, Any]]
    assistant_id: str | None
    run_id: str | None
    attachments: list[dict[str, Any]]
    metadata: dict[str, str]


def content_parts(content: str | list[Any]) -> list[dict[str, Any]]:
    """The stored (and returned) form of message content: a list of typed blocks, text with annotations."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if part.type == "text":
            parts.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        else:
            parts.append(part.model_dump(mode="json", exclude_none=True))
    return parts


def text_of(content: list[dict[str, Any]]) -> str:
    """What a text-only model reads of a message: its text blocks, and a marker for each image."""
    pieces = []
    for part in content:
        if part["type"] == "text":
            pieces.append(part["text"]["value"])
        elif part["type"] == "image_file":
            pieces.append(f"[image: {part['image_file']['file_id']}]")
        elif part["type"] == "image_url":
            pieces.append(f"[image: {part['image_url']['url']}]")
    return "\n".join(pieces)
