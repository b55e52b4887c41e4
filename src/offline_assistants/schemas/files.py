from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import ListParams

FilePurpose = Literal[
    "assistants", "assistants_output", "batch", "batch_output", "fine-tune", "fine-tune-results", "vision", "user_data",
    "evals",
]
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: FilePurpose
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None


class FileListParams(ListParams):
    """GET /v1/files takes far bigger pages than the other lists: 1 to 10,000 files, all of them by default."""

    limit: int = Field(default=10_000, ge=1, le=10_000)
    purpose: str | None = None
