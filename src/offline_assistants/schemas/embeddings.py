"""The request and objects of /v1/embeddings, shaped as openai-python's `types/embedding*.py` and
`create_embedding_response.py`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import Request


class EmbeddingCreate(Request):
    # A text, texts, one input's token ids, or several inputs' token ids: the ids are of the embedding model's own
    # vocabulary. Emptiness, counts and lengths are the engine's to refuse, with the API's messages.
    input: str | list[str] | list[int] | list[list[int]]
    model: str
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    # base64: the float32 values, little-endian, as the SDK decodes them.
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
