"""Pieces shared by the request and object models: metadata, tools, tool resources, pagination."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def _check_metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_METADATA_KEYS:
        raise PydanticCustomError(
            "object_above_max_properties",
            "Invalid 'metadata': too many properties. Expected an object with at most {limit} properties, "
            "but got an object with {got} properties instead.",
            {"limit": MAX_METADATA_KEYS, "got": len(value)},
        )
    for key, item in value.items():
        if len(key) > MAX_METADATA_KEY:
            raise PydanticCustomError(
                "string_above_max_length",
                "Invalid 'metadata': key '{key}' is too long. Expected a key with maximum length {limit}, "
                "but got a key with length {got} instead.",
                {"key": key[:80], "limit": MAX_METADATA_KEY, "got": len(key)},
            )
        if len(item) > MAX_METADATA_VALUE:
            raise PydanticCustomError(
                "string_above_max_length",
                "Invalid 'metadata.{key}': string too long. Expected a string with maximum length {limit}, "
                "but got a string with length {got} instead.",
                {"key": key[:80], "limit": MAX_METADATA_VALUE, "got": len(item)},
            )
    return value


Metadata = Annotated[dict[str, str], AfterValidator(_check_metadata)]


def merged_metadata(current: dict[str, str], given: dict[str, str] | None) -> dict[str, str]:
    """What a modify request's `metadata` leaves on the object: the given keys set over the stored ones.

    The hosted API merges (a suite written against it sets one key and expects the others kept); `null` or `{}`
    changes nothing. The 16-key limit holds for the result, with the API's message.
    """
    from offline_assistants.errors import InvalidRequest

    merged = {**current, **(given or {})}
    if len(merged) > MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"Invalid 'metadata': too many properties. Expected an object with at most {MAX_METADATA_KEYS} "
            f"properties, but got an object with {len(merged)} properties instead.", param="metadata",
            code="object_above_max_properties")
    return merged


class Request(BaseModel):
    """A request body: unknown fields are refused, as the real API refuses them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # JSON has no NaN or Infinity


class Loose(BaseModel):
    # Objects inside API responses: keep whatever shape the stored JSON has.
    model_config = ConfigDict(extra="allow")


# --- tools -----------------------------------------------------------------------------------------------------


class CodeInterpreterTool(Request):
    type: Literal["code_interpreter"]


class RankingOptions(Request):
    score_threshold: float = Field(ge=0, le=1)
    ranker: Literal["auto", "default_2024_08_21"] | None = None


class FileSearchOptions(Request):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


class FileSearchTool(Request):
    type: Literal["file_search"]
    file_search: FileSearchOptions | None = None


class FunctionDefinition(Request):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(Request):
    type: Literal["function"]
    function: FunctionDefinition


class ExtensionTool(BaseModel):
    """A tool of our own, `x_` and a name: offered to the model when the server registers a tool of that type
    (tools/registry.py), and not otherwise. Its options are the tool's to read."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    type: str = Field(pattern=r"^x_[a-z0-9_]{1,60}$")


def _tool_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("code_interpreter", "file_search", "function"):
        return str(kind)
    return "extension" if isinstance(kind, str) and kind.startswith("x_") else None


Tool = Annotated[
    Annotated[CodeInterpreterTool, Tag("code_interpreter")] | Annotated[FileSearchTool, Tag("file_search")]
    | Annotated[FunctionTool, Tag("function")] | Annotated[ExtensionTool, Tag("extension")],
    Discriminator(_tool_kind, custom_error_type="invalid_tool_type", custom_error_message=(
        "Supported values are: 'code_interpreter', 'file_search', 'function', and 'x_' tools the server registers"))]
Tools = Annotated[list[Tool], Field(max_length=128)]


class CodeInterpreterResources(Request):
    file_ids: Annotated[list[str], Field(max_length=20)] = []


class InlineVectorStore(Request):
    """The `vector_stores` helper of tool_resources: a store made on the spot from these files."""

    file_ids: Annotated[list[str], Field(max_length=10_000)] = []
    chunking_strategy: dict[str, Any] | None = None  # checked when the store is made (schemas/vector_stores.py)
    metadata: Metadata | None = None


class FileSearchResources(Request):
    vector_store_ids: Annotated[list[str], Field(max_length=1)] = []
    vector_stores: Annotated[list[InlineVectorStore], Field(max_length=1)] | None = None


class ToolResources(Request):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class ResponseFormatText(Request):
    type: Literal["text"]


class ResponseFormatJSONObject(Request):
    type: Literal["json_object"]


class JSONSchemaFormat(Request):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatJSONSchema(Request):
    type: Literal["json_schema"]
    json_schema: JSONSchemaFormat


ResponseFormat = (
    Literal["auto"]
    | Annotated[ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema, Field(discriminator="type")]
)

# Counts (tokens, messages) are 32-bit in the real API's spec; past that a value could not even be stored (SQLite's
# integers are 64-bit), so it is refused as a 400 instead.
MAX_COUNT = 2**31 - 1

Temperature = Annotated[float, Field(ge=0, le=2)]
TopP = Annotated[float, Field(ge=0, le=1)]

# --- lists -----------------------------------------------------------------------------------------------------

Order = Literal["asc", "desc"]


class ListParams(BaseModel):
    """Query parameters of every list endpoint. Unknown query parameters are ignored, as the real API does."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True


def dump_tools(tools: list[Any] | None) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json", exclude_none=True, by_alias=True) for t in tools or []]


def dump(value: BaseModel | str | None) -> Any:
    if value is None or isinstance(value, str):
        return value
    return value.model_dump(mode="json", exclude_none=True, by_alias=True)
