"""Vector stores, their files and file batches, and search: the request and object models of the real API
(openai-python's types/vector_store*.py and types/vector_stores/)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from offline_assistants.schemas.common import MAX_COUNT, ListParams, Metadata, Request

AUTO_CHUNK_TOKENS = 800
AUTO_OVERLAP_TOKENS = 400
MAX_ATTRIBUTES = 16
BATCH_LIMIT = 2000

AttributeValue = str | float | bool


def _check_attributes(value: dict[str, AttributeValue] | None) -> dict[str, AttributeValue] | None:
    from pydantic_core import PydanticCustomError

    if value is None:
        return None
    if len(value) > MAX_ATTRIBUTES:
        raise PydanticCustomError(
            "object_above_max_properties",
            "Invalid 'attributes': too many properties. Expected an object with at most {limit} properties, "
            "but got an object with {got} properties instead.", {"limit": MAX_ATTRIBUTES, "got": len(value)})
    for key, item in value.items():
        if len(key) > 64:
            raise PydanticCustomError("string_above_max_length",
                                      "Invalid 'attributes': key '{key}' is too long (at most 64 characters).",
                                      {"key": key[:80]})
        if isinstance(item, str) and len(item) > 512:
            raise PydanticCustomError("string_above_max_length",
                                      "Invalid 'attributes.{key}': string too long (at most 512 characters).",
                                      {"key": key[:80]})
    return value


Attributes = Annotated[dict[str, AttributeValue] | None, AfterValidator(_check_attributes)]


# --- chunking ---------------------------------------------------------------------------------------------------

class AutoChunking(Request):
    type: Literal["auto"]


class StaticChunkingSizes(Request):
    max_chunk_size_tokens: Annotated[int, Field(ge=100, le=4096)]
    chunk_overlap_tokens: Annotated[int, Field(ge=0, le=MAX_COUNT)]

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> StaticChunkingSizes:
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            from pydantic_core import PydanticCustomError

            raise PydanticCustomError(
                "invalid_value",
                "Invalid 'chunk_overlap_tokens': must not exceed half of max_chunk_size_tokens ({half}).",
                {"half": self.max_chunk_size_tokens // 2})
        return self


class StaticChunking(Request):
    type: Literal["static"]
    static: StaticChunkingSizes


ChunkingStrategy = Annotated[AutoChunking | StaticChunking, Field(discriminator="type")]


def stored_chunking(strategy: AutoChunking | StaticChunking | None) -> dict[str, Any]:
    """The strategy as a file reports it: `auto` is shown with the sizes it stands for, as the real API does."""
    if isinstance(strategy, StaticChunking):
        return {"type": "static", "static": strategy.static.model_dump()}
    return {"type": "static", "static": {"max_chunk_size_tokens": AUTO_CHUNK_TOKENS,
                                         "chunk_overlap_tokens": AUTO_OVERLAP_TOKENS}}


# --- vector stores ----------------------------------------------------------------------------------------------

class ExpiresAfter(Request):
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(ge=1, le=365)]


class VectorStoreCreate(Request):
    name: str | None = None
    description: str | None = None
    file_ids: Annotated[list[str], Field(max_length=500)] = []
    chunking_strategy: ChunkingStrategy | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class VectorStoreUpdate(Request):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata | None = None


class FileCounts(BaseModel):
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class VectorStore(BaseModel):
    id: str
    object: Literal["vector_store"] = "vector_store"
    created_at: int
    name: str
    description: str | None = None
    usage_bytes: int
    file_counts: FileCounts
    status: Literal["expired", "in_progress", "completed"]
    expires_after: dict[str, Any] | None
    expires_at: int | None
    last_active_at: int | None
    metadata: dict[str, str]


# --- files and batches ------------------------------------------------------------------------------------------

FileStatus = Literal["in_progress", "completed", "cancelled", "failed"]


class VectorStoreFileCreate(Request):
    file_id: str
    attributes: Attributes = None
    chunking_strategy: ChunkingStrategy | None = None


class VectorStoreFileUpdate(Request):
    attributes: Attributes


class VectorStoreFileListParams(ListParams):
    filter: FileStatus | None = None


class BatchFile(Request):
    file_id: str
    attributes: Attributes = None
    chunking_strategy: ChunkingStrategy | None = None


class FileBatchCreate(Request):
    file_ids: Annotated[list[str], Field(max_length=BATCH_LIMIT)] | None = None
    files: Annotated[list[BatchFile], Field(max_length=BATCH_LIMIT)] | None = None
    attributes: Attributes = None
    chunking_strategy: ChunkingStrategy | None = None

    def entries(self) -> list[BatchFile]:
        """The batch as one list of files, each with its own attributes and chunking."""
        if self.files is not None:
            return self.files
        return [BatchFile(file_id=f, attributes=self.attributes, chunking_strategy=self.chunking_strategy)
                for f in self.file_ids or []]


class VectorStoreFile(BaseModel):
    id: str
    object: Literal["vector_store.file"] = "vector_store.file"
    created_at: int
    vector_store_id: str
    status: FileStatus
    usage_bytes: int
    last_error: dict[str, str] | None
    chunking_strategy: dict[str, Any] | None
    attributes: dict[str, AttributeValue] | None


class VectorStoreFileBatch(BaseModel):
    id: str
    object: Literal["vector_store.files_batch"] = "vector_store.files_batch"
    created_at: int
    vector_store_id: str
    status: FileStatus
    file_counts: FileCounts


class FileContent(BaseModel):
    type: Literal["text"] = "text"
    text: str


class FileContentPage(BaseModel):
    object: Literal["vector_store.file_content.page"] = "vector_store.file_content.page"
    data: list[FileContent]
    has_more: bool = False
    next_page: str | None = None


# --- search -----------------------------------------------------------------------------------------------------

class SearchRankingOptions(Request):
    ranker: Literal["none", "auto", "default-2024-11-15"] | None = None
    score_threshold: Annotated[float, Field(ge=0, le=1)] | None = None


class VectorStoreSearch(Request):
    query: str | Annotated[list[str], Field(min_length=1)]
    filters: dict[str, Any] | None = None  # checked by retrieval/filters.py, which names the bad path
    max_num_results: Annotated[int, Field(ge=1, le=50)] = 10
    ranking_options: SearchRankingOptions | None = None
    rewrite_query: bool = False

    def queries(self) -> list[str]:
        return [self.query] if isinstance(self.query, str) else list(self.query)


class SearchResult(BaseModel):
    file_id: str
    filename: str
    score: float
    attributes: dict[str, AttributeValue] | None
    content: list[FileContent]


class SearchPage(BaseModel):
    object: Literal["vector_store.search_results.page"] = "vector_store.search_results.page"
    search_query: list[str]
    data: list[SearchResult]
    has_more: bool = False
    next_page: str | None = None
