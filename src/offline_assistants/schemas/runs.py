from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from offline_assistants.schemas.assistants import ModelOptions
from offline_assistants.schemas.common import MAX_COUNT, Metadata, Request, ToolResources, Tools
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.threads import ThreadCreate

RunStatus = Literal[
    "queued", "in_progress", "requires_action", "cancelling", "cancelled", "failed", "completed", "incomplete",
    "expired",
]
StepStatus = Literal["in_progress", "cancelled", "failed", "completed", "expired"]
StepType = Literal["message_creation", "tool_calls"]

# Which status may follow which: the run state machine. Runs move along it only through Lifecycle.move
# (engine/lifecycle.py); it sits here, beside RunStatus, because the store reads the sets derived from it too.
#
#     queued ──────► in_progress ──────► completed | incomplete | failed | cancelled | expired
#       │  ▲             │       │
#       │  │             │       └──────► cancelling ──► cancelled | failed
#       │  │             ▼                    ▲
#       │  └──── requires_action ─────────────┘
#       │  (submit_tool_outputs)  └──► expired | failed
#       └──► cancelled | expired | failed
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    "queued": frozenset({"in_progress", "cancelled", "expired", "failed"}),
    "in_progress": frozenset({"requires_action", "completed", "incomplete", "failed", "cancelling", "cancelled",
                              "expired"}),
    "requires_action": frozenset({"queued", "cancelling", "expired", "failed"}),
    "cancelling": frozenset({"cancelled", "failed"}),
    "completed": frozenset(),
    "incomplete": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}
TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(s for s, nexts in TRANSITIONS.items() if not nexts)
ACTIVE_STATUSES: frozenset[RunStatus] = frozenset(TRANSITIONS) - TERMINAL_STATUSES  # they hold their thread
# What a run left active by a previous process becomes at start-up (Lifecycle.recover). One that was executing
# cannot resume (its model state is gone): it fails. A queued one never started: it expires. One being cancelled
# is cancelled. One waiting for tool outputs keeps waiting until its own expires_at.
RECOVERY: dict[RunStatus, RunStatus] = {"queued": "expired", "in_progress": "failed", "cancelling": "cancelled"}


class TruncationStrategy(Request):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[int, Field(ge=1, le=MAX_COUNT)] | None = None

    @model_validator(mode="after")
    def _needs_count(self) -> TruncationStrategy:
        if self.type == "last_messages" and self.last_messages is None:
            from pydantic_core import PydanticCustomError

            raise PydanticCustomError(
                "missing_required_parameter",
                "Missing required parameter: 'truncation_strategy.last_messages'.",
            )
        return self


class NamedFunction(Request):
    name: str


class ToolChoiceTool(Request):
    type: Literal["code_interpreter", "file_search"]


class ToolChoiceFunction(Request):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = (
    Literal["none", "auto", "required"]
    | Annotated[ToolChoiceTool | ToolChoiceFunction, Field(discriminator="type")]
)

PositiveTokens = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class _RunOptions(ModelOptions):
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: Tools | None = None
    stream: bool | None = None
    max_prompt_tokens: PositiveTokens | None = None
    max_completion_tokens: PositiveTokens | None = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


class RunCreate(_RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[MessageCreate] | None = None


class ThreadAndRunCreate(_RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: ToolResources | None = None


class RunUpdate(Request):
    metadata: Metadata | None = None


class ToolOutput(Request):
    tool_call_id: str | None = None
    output: str | None = None


class SubmitToolOutputs(Request):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunWindow(BaseModel):
    """What the model was shown on the run's latest model call. The kept messages are one span of the thread, from
    `first_message_id` to `last_message_id`; older ones were cut by truncation (later ones came after the call)."""

    first_message_id: str | None
    last_message_id: str | None
    messages: int  # messages kept
    tool_exchanges: int  # this run's tool calls (with their results) kept after the messages
    tool_exchanges_cut: int  # the run's oldest tool exchanges, cut to make room
    prompt_tokens: int  # the whole prompt: instructions, kept messages, tool exchanges


class RunDetails(BaseModel):
    """`x_details`, an extension the real API lacks (clients that do not know it ignore it, as the official SDKs
    do): how the run's model calls went and what the model saw."""

    time_to_first_token_ms: float | None = None  # from the run starting to its first generated token
    tokens_per_second: float | None = None  # generated_tokens over generation_ms
    model_calls: int = 0
    generated_tokens: int = 0  # tokens generated after each call's first one
    generation_ms: float = 0.0  # time spent generating them
    prompt_tokens: int = 0  # prompt tokens of the model calls, all of them read from the KV cache or evaluated
    cached_prompt_tokens: int = 0  # of those, how many the KV cache held (reused, not evaluated again)
    window: RunWindow | None = None

    @classmethod
    def stored(cls, values: dict[str, Any] | None) -> RunDetails:
        """The object from what the store keeps (engine/metrics.py adds to it), the rate computed."""
        details = cls.model_validate(values or {})
        if details.generation_ms > 0 and details.generated_tokens:
            details.tokens_per_second = round(details.generated_tokens * 1000 / details.generation_ms, 1)
        return details


class Run(BaseModel):
    id: str
    object: Literal["thread.run"] = "thread.run"
    created_at: int
    assistant_id: str
    thread_id: str
    status: RunStatus
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    required_action: dict[str, Any] | None
    last_error: dict[str, Any] | None
    model: str
    instructions: str
    tools: list[dict[str, Any]]
    metadata: dict[str, str]
    incomplete_details: dict[str, Any] | None
    usage: Usage | None
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any]
    response_format: Any
    tool_choice: Any
    parallel_tool_calls: bool
    x_details: RunDetails = Field(default_factory=RunDetails)


class RunStep(BaseModel):
    id: str
    object: Literal["thread.run.step"] = "thread.run.step"
    created_at: int
    run_id: str
    assistant_id: str
    thread_id: str
    type: StepType
    status: StepStatus
    cancelled_at: int | None
    completed_at: int | None
    expired_at: int | None
    failed_at: int | None
    last_error: dict[str, Any] | None
    step_details: dict[str, Any]
    usage: Usage | None
    metadata: dict[str, str]


FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def shown_step(step: RunStep, include: list[str] | tuple[str, ...] = ()) -> RunStep:
    """A step as the API shows it: file search results carry their content only when the client asked for it
    with `include[]` (the store keeps it)."""
    if FILE_SEARCH_CONTENT in include or step.type != "tool_calls":
        return step
    calls = step.step_details.get("tool_calls") or []
    if not any(c.get("type") == "file_search" for c in calls):
        return step
    bare = []
    for call in calls:
        if call.get("type") == "file_search":
            body = dict(call["file_search"])
            body["results"] = [{k: v for k, v in r.items() if k != "content"} for r in body.get("results") or []]
            call = {**call, "file_search": body}
        bare.append(call)
    return step.model_copy(update={"step_details": {**step.step_details, "tool_calls": bare}})
