"""Chat Completions on the engine: a chat completion is a response that keeps nothing (engine/responses.py).

The messages become the response's input items (system and developer ones its instructions, an assistant's
`tool_calls` function calls, a `tool` message its call's output), the tools, tool choice and response format
their Responses forms, and the response's output the completion's message. So the decision, the grammar-written
calls, the model's own call syntax and the window's refusal of an overflow are the runs' own; nothing is stored
once the reply is made.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.chat import (
    ChatCompletion,
    ChatCompletionCreate,
    ChatMessage,
    Choice,
    CompletionUsage,
    FinishReason,
    PromptTokensDetails,
    ToolCall,
    ToolCallFunction,
)
from offline_assistants.schemas.responses import Response, ResponseCreate

MAX_STOPS = 4  # as the real API allows


def _content(value: Any, param: str) -> str | list[dict[str, Any]]:
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise InvalidRequest(f"Invalid type for '{param}': expected a string or an array.", param=param,
                             code="invalid_type")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif kind == "image_url":
            parts.append({"type": "input_image", "image_url": (part.get("image_url") or {}).get("url")})
        elif kind == "file":
            file = part.get("file") or {}
            parts.append({"type": "input_file", **{k: file[k] for k in ("file_id", "file_data", "filename")
                                                   if k in file}})
        else:
            raise InvalidRequest(f"Invalid content part at '{param}[{j}]': type '{kind}' is not supported.",
                                 param=f"{param}[{j}]", code="invalid_value")
    return parts


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "".join(p.get("text", "") for p in value or [] if isinstance(p, dict))


def as_response(req: ChatCompletionCreate) -> ResponseCreate:
    """The request as a response that keeps nothing."""
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for i, message in enumerate(req.messages):
        role, param = message.get("role"), f"messages[{i}]"
        if role in ("system", "developer"):
            instructions.append(_text(message.get("content")))
        elif role == "user":
            items.append({"role": "user", "content": _content(message.get("content"), f"{param}.content")})
        elif role == "assistant":
            if message.get("content"):
                items.append({"role": "assistant", "content": _text(message.get("content"))})
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                items.append({"type": "function_call", "call_id": call.get("id"), "name": fn.get("name"),
                              "arguments": fn.get("arguments", "")})
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"),
                          "output": _text(message.get("content"))})
        else:
            raise InvalidRequest(f"Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user', "
                                 "'assistant' and 'tool'.", param=f"{param}.role", code="invalid_value")
    tools = [{"type": "function", **t["function"]} if t.get("type") == "function" and isinstance(
        t.get("function"), dict) else t for t in req.tools or []]
    choice: Any = req.tool_choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        choice = {"type": "function", "name": (choice.get("function") or {}).get("name")}
    fmt = req.response_format or {"type": "text"}
    if fmt.get("type") == "json_schema":
        fmt = {"type": "json_schema", **(fmt.get("json_schema") or {})}
    # Built without validation: a chat completion may ask for fewer than the 16 tokens a response may.
    fields = {"model": req.model, "input": items, "instructions": "\n\n".join(instructions) or None,
              "tools": tools or None, "tool_choice": choice, "parallel_tool_calls": req.parallel_tool_calls,
              "text": {"format": fmt}, "temperature": req.temperature, "top_p": req.top_p,
              "max_output_tokens": req.max_completion_tokens or req.max_tokens, "truncation": "disabled",
              "store": False, "include": ["message.output_text.logprobs"] if req.logprobs else None,
              "top_logprobs": req.top_logprobs if req.logprobs else None}
    return ResponseCreate.model_construct(**{k: v for k, v in fields.items() if v is not None})


def sampling(req: ChatCompletionCreate) -> dict[str, Any]:
    """What the request asks of the sampler beyond a response's fields (the run keeps it: engine/model_calls.py)."""
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stops) > MAX_STOPS:
        raise InvalidRequest(f"Invalid 'stop': expected an array of at most {MAX_STOPS} strings, but got "
                             f"{len(stops)}.", param="stop", code="array_above_max_length")
    bias: dict[str, float] = {}
    for token, value in (req.logit_bias or {}).items():
        if not token.isdigit() or not -100 <= value <= 100:
            raise InvalidRequest(f"Invalid 'logit_bias': '{token}': {value} (keys are token ids, values from -100 "
                                 "to 100).", param="logit_bias", code="invalid_value")
        bias[token] = value
    # A conversation is told by how it begins: a follow-up that repeats it continues the model state it left
    # (the model process checks the tokens, so a shared beginning costs nothing when the rest differs).
    opening = json.dumps(req.messages[:2], sort_keys=True).encode()
    out = {"stop": stops, "seed": req.seed, "presence_penalty": req.presence_penalty,
           "frequency_penalty": req.frequency_penalty, "logit_bias": bias,
           "cache_key": "chat-" + hashlib.sha256(opening).hexdigest()[:24]}
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def finish_reason(response: Response) -> FinishReason:
    if any(o.get("type") == "function_call" for o in response.output):
        return "tool_calls"
    if response.status == "incomplete" or any(
            o.get("type") == "message" and o.get("status") == "incomplete" for o in response.output):
        return "length"
    return "stop"


def as_completion(response: Response, model: str, *, logprobs: bool = False) -> ChatCompletion:
    parts = [p for o in response.output if o.get("type") == "message" for p in o.get("content") or []]
    text = "".join(p.get("text", "") for p in parts)
    weights = {"content": [t for p in parts for t in p.get("logprobs") or []], "refusal": None} if logprobs else None
    calls = [ToolCall(id=o["call_id"], function=ToolCallFunction(name=o["name"], arguments=o["arguments"]))
             for o in response.output if o.get("type") == "function_call"]
    usage = response.usage
    return ChatCompletion(
        id=completion_id(response.id), created=response.created_at, model=model,
        choices=[Choice(message=ChatMessage(content=text if text or not calls else None, tool_calls=calls or None),
                        finish_reason=finish_reason(response), logprobs=weights)],
        usage=CompletionUsage(prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens,
                              total_tokens=usage.total_tokens, prompt_tokens_details=PromptTokensDetails(
                                  cached_tokens=usage.input_tokens_details.cached_tokens)) if usage else None)


def completion_id(response_id: str) -> str:
    return "chatcmpl-" + response_id.removeprefix("resp_")


def merged(completions: list[ChatCompletion]) -> ChatCompletion:
    """`n` completions of one request as one with `n` choices (indexed in order), their usage summed."""
    first = completions[0]
    choices = [c.choices[0].model_copy(update={"index": i}) for i, c in enumerate(completions)]
    usages = [c.usage for c in completions if c.usage is not None]
    usage = CompletionUsage(
        prompt_tokens=sum(u.prompt_tokens for u in usages), completion_tokens=sum(u.completion_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages), prompt_tokens_details=PromptTokensDetails(
            cached_tokens=sum(u.prompt_tokens_details.cached_tokens for u in usages))) if usages else None
    return first.model_copy(update={"choices": choices, "usage": usage})


def chunk(completion_id: str, model: str, created: int, delta: dict[str, Any],
          finish: FinishReason | None = None, *, index: int = 0) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": [{"index": index, "delta": delta, "finish_reason": finish,
                                                     "logprobs": None}]}


def usage_chunk(completion_id: str, model: str, created: int, usage: CompletionUsage | None) -> dict[str, Any]:
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": [], "usage": usage.model_dump() if usage else None}
