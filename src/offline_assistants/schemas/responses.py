"""The Responses API's request and objects, as openai-python's `types/responses` has them.

Input items and tools arrive as plain JSON objects and are checked one by one by the engine (engine/responses.py
says what each becomes), so an error names the exact `input[i]` or `tools[i]` the real API would name. Fields with
no local meaning (`reasoning`, `service_tier`, `prompt_cache_key`, ...) are accepted and echoed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from offline_assistants.schemas.common import Metadata, Request

ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]
Includable = Literal[
    "file_search_call.results", "code_interpreter_call.outputs", "message.output_text.logprobs",
    "message.input_image.image_url", "computer_call_output.output.image_url", "reasoning.encrypted_content",
    "web_search_call.action.sources", "web_search_call.results",
]


class ConversationParam(Request):
    id: str


class ResponseCreate(Request):
    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationParam | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tool_calls: int | None = Field(default=None, ge=1)
    text: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=16)
    truncation: Literal["auto", "disabled"] | None = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    include: list[Includable] | None = None
    metadata: Metadata | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    # Accepted and echoed: they mean nothing to a local model.
    reasoning: dict[str, Any] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    user: str | None = None
    prompt: dict[str, Any] | None = None


class InputTokensCount(Request):
    """`POST /v1/responses/input_tokens`: the request's input counted, nothing generated."""

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationParam | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0  # what the KV cache held
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class Response(BaseModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: ResponseStatus
    completed_at: int | None = None
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    model: str
    output: list[dict[str, Any]]
    parallel_tool_calls: bool
    previous_response_id: str | None = None
    conversation: dict[str, str] | None = None
    reasoning: dict[str, Any] = Field(default_factory=lambda: {"effort": None, "summary": None})
    background: bool = False
    service_tier: str | None = "default"
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}, "verbosity": "medium"})
    tool_choice: Any = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_logprobs: int | None = 0
    top_p: float | None = None
    # The real API sends these (Open Responses requires them) though no request sets them: no penalty here.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    truncation: Literal["auto", "disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True


class InputTokens(BaseModel):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int
