"""Uploads: a file sent in parts (each at most 64 MB), joined into an ordinary File on completion."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import Request
from offline_assistants.schemas.files import FileObject

UPLOAD_MAX_BYTES = 8 * 1024 * 1024 * 1024  # an upload takes at most 8 GB in all, as the real API
UploadStatus = Literal["pending", "completed", "cancelled", "expired"]


class UploadCreate(Request):
    bytes: int = Field(ge=0, le=UPLOAD_MAX_BYTES)
    filename: str = Field(min_length=1)
    mime_type: str = Field(min_length=1)
    purpose: str


class UploadComplete(Request):
    part_ids: list[str]  # in the order their bytes are joined
    md5: str | None = None


class Upload(BaseModel):
    id: str
    object: Literal["upload"] = "upload"
    bytes: int
    created_at: int
    expires_at: int
    filename: str
    purpose: str
    status: UploadStatus
    file: FileObject | None = None


class UploadPart(BaseModel):
    id: str
    object: Literal["upload.part"] = "upload.part"
    created_at: int
    upload_id: str
