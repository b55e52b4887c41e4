"""What the Responses face reads and writes in Assistants terms: its tools as a run's tools, its input items as
messages and tool outputs, and a run's steps and messages as its output items.

One execution serves both faces (engine/responses.py), so everything here is translation: no rule of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from offline_assistants.errors import InvalidRequest
from offline_assistants.retrieval.filters import validate
from offline_assistants.schemas.messages import MessageCreate

# Tools that need the internet or a hosted service: refused by name, never silently dropped.
HOSTED = {
    "web_search": "it searches the internet",
    "web_search_preview": "it searches the internet",
    "web_search_2025_08_26": "it searches the internet",
    "web_search_preview_2025_03_11": "it searches the internet",
    "image_generation": "it needs OpenAI's image model",
    "computer_use_preview": "it drives a hosted computer",
    "computer": "it drives a hosted computer",
    "mcp": "remote MCP servers are reached over the internet",
    "tool_search": "it needs OpenAI's hosted tool index",
}


@dataclass
class RunTools:
    """A response's tools as a run has them, and what the run's tools read besides."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    vector_store_ids: list[str] = field(default_factory=list)
    container: str | dict[str, Any] | None = None  # the code interpreter's: an id, or {"type": "auto", ...}


def run_tools(tools: list[dict[str, Any]] | None) -> RunTools:
    out = RunTools()
    for i, tool in enumerate(tools or []):
        kind = tool.get("type")
        param = f"tools[{i}]"
        if kind in HOSTED:
            raise InvalidRequest(f"The tool '{kind}' is not available on this offline server: {HOSTED[kind]}.",
                                 param=f"{param}.type", code="unsupported_tool")
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"Missing required parameter: '{param}.name'.", param=f"{param}.name",
                                     code="missing_required_parameter")
            fn: dict[str, Any] = {"name": name}
            fn.update({k: tool[k] for k in ("description", "parameters", "strict") if k in tool})
            out.tools.append({"type": "function", "function": fn})
        elif kind == "custom":
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(f"Missing required parameter: '{param}.name'.", param=f"{param}.name",
                                     code="missing_required_parameter")
            fmt = tool.get("format") or {"type": "text"}
            if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "grammar"):
                raise InvalidRequest(f"Invalid value for '{param}.format': expected an object of type 'text' or "
                                     "'grammar'.", param=f"{param}.format", code="invalid_value")
            if fmt.get("type") == "grammar" and fmt.get("syntax") not in ("lark", "regex"):
                raise InvalidRequest(f"Invalid value: '{fmt.get('syntax')}'. Supported values are: 'lark' and "
                                     "'regex'.", param=f"{param}.format.syntax", code="invalid_value")
            out.tools.append({"type": "custom", "custom": {"name": name, "description": tool.get("description"),
                                                           "format": fmt}})
        elif kind == "file_search":
            ids = tool.get("vector_store_ids")
            if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
                raise InvalidRequest(f"Missing required parameter: '{param}.vector_store_ids'.",
                                     param=f"{param}.vector_store_ids", code="missing_required_parameter")
            if tool.get("filters") is not None:
                validate(tool["filters"], f"{param}.filters")  # the 400 names the bad part
            options = {k: tool[k] for k in ("max_num_results", "ranking_options", "filters") if tool.get(k) is not None}
            out.tools.append({"type": "file_search", **({"file_search": options} if options else {})})
            out.vector_store_ids += [v for v in ids if v not in out.vector_store_ids]
        elif kind == "code_interpreter":
            container = tool.get("container")
            if not isinstance(container, str) and not (isinstance(container, dict) and container.get("type")
                                                       == "auto"):
                raise InvalidRequest(f"Missing required parameter: '{param}.container' (a container id, or "
                                     "{\"type\": \"auto\"}).", param=f"{param}.container",
                                     code="missing_required_parameter")
            out.tools.append({"type": "code_interpreter"})
            out.container = container
        else:
            raise InvalidRequest(f"Invalid value: '{kind}'. Supported values are: 'function', 'file_search' and "
                                 "'code_interpreter'.", param=f"{param}.type", code="invalid_value")
    return out


@dataclass
class Input:
    """A response's input, sorted by what each item becomes."""

    messages: list[MessageCreate] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)  # system and developer messages: this response's own
    calls: list[dict[str, Any]] = field(default_factory=list)  # function calls the client brings as history
    outputs: dict[str, str] = field(default_factory=dict)  # call_id -> output
    items: list[dict[str, Any]] = field(default_factory=list)  # every item as input_items lists it
    # Messages and the other items a conversation keeps as rows, in the order given.
    rows: list[MessageCreate | dict[str, Any]] = field(default_factory=list)

    def split(self) -> tuple[Input, Input]:
        """The history, up to the last message, and the function calls and outputs after it: the round a run
        continues from. Calls followed by messages (an earlier turn's, as the Agents SDK sends its history) are
        history, read where they were."""
        cut = max((i + 1 for i, row in enumerate(self.rows) if isinstance(row, MessageCreate)), default=0)
        tail = [row for row in self.rows[cut:] if isinstance(row, dict)]
        ids = {row["call_id"] for row in tail}
        history = Input(self.messages, self.instructions, [c for c in self.calls if c["call_id"] not in ids],
                        {k: v for k, v in self.outputs.items() if k not in ids},
                        [i for i in self.items if i not in tail], self.rows[:cut])
        rows: list[MessageCreate | dict[str, Any]] = list(tail)
        current = Input([], [], [c for c in self.calls if c["call_id"] in ids],
                        {k: v for k, v in self.outputs.items() if k in ids}, tail, rows)
        return history, current


# An `input_file` part's text, from its file id, or its base64 `file_data` and `filename` (engine/responses.py
# extracts it as file search does): the model reads the file, which is what the real API gives it.
FileReader = Callable[[dict[str, Any], str], str]


def _no_files(part: dict[str, Any], param: str) -> str:
    raise InvalidRequest(f"Invalid content part at '{param}': files are not read here.", param=param,
                         code="invalid_value")


def _text(content: Any, param: str, output: bool = False, read_file: FileReader = _no_files
          ) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid type for '{param}': expected a string or an array.", param=param,
                             code="invalid_type")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and part.get("file_id"):
            parts.append({"type": "image_file", "image_file": {"file_id": part["file_id"]}})
        elif kind == "input_image" and part.get("image_url"):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        elif kind == "input_file":
            parts.append({"type": "text", "text": read_file(part, f"{param}[{j}]")})
        elif kind == "refusal" and output:
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        else:
            raise InvalidRequest(f"Invalid content part at '{param}[{j}]': type '{kind}' is not supported here.",
                                 param=f"{param}[{j}]", code="invalid_value")
    return parts


def read_input(value: str | list[dict[str, Any]] | None, new_id: Callable[[str], str],
               read_file: FileReader = _no_files, refer: Callable[[str, str], dict[str, Any]] | None = None
               ) -> Input:
    """`refer(id, param)`: the stored item an `item_reference` names, read as if it had been given."""
    out = Input()
    items = [{"role": "user", "content": value}] if isinstance(value, str) else list(value or [])
    for i, item in enumerate(items):
        param = f"input[{i}]"
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind == "item_reference" and refer is not None and isinstance(item.get("id"), str):
            item = _as_input(refer(item["id"], f"{param}.id"))
            kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("system", "developer"):
            text = " ".join(p["text"] for p in _text(item.get("content"), f"{param}.content") if "text" in p)
            out.instructions.append(text)
            out.items.append(_message_item(new_id("message"), item["role"], [{"type": "text", "text": text}]))
        elif kind == "message" and item.get("role") in ("user", "assistant"):
            parts = _text(item.get("content"), f"{param}.content", output=item["role"] == "assistant",
                          read_file=read_file)
            try:
                out.messages.append(MessageCreate.model_validate({"role": item["role"], "content": parts}))
            except ValidationError:
                raise InvalidRequest(f"Invalid content at '{param}.content'.", param=f"{param}.content",
                                     code="invalid_value") from None
            out.rows.append(out.messages[-1])
        elif kind in ("function_call_output", "custom_tool_call_output"):  # an output the client ran for
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str):
                raise InvalidRequest(f"Missing required parameter: '{param}.call_id'.", param=f"{param}.call_id",
                                     code="missing_required_parameter")
            out.outputs[call_id] = output if isinstance(output, str) else json.dumps(output)
            out.items.append({"id": item.get("id") or new_id("item"), "type": kind, "call_id": call_id,
                              "output": out.outputs[call_id], "status": "completed"})
            out.rows.append(out.items[-1])
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise InvalidRequest(f"Missing required parameter: '{param}.{key}'.", param=f"{param}.{key}",
                                         code="missing_required_parameter")
            out.calls.append(item)
            out.items.append({"id": item.get("id") or "fc_" + item["call_id"].removeprefix("call_"),
                              "type": "function_call", "call_id": item["call_id"], "name": item["name"],
                              "arguments": item["arguments"], "status": "completed"})
            out.rows.append(out.items[-1])
        elif kind in ("reasoning", "item_reference"):
            continue  # a reasoning model's own items (and references where nothing is stored): nothing to add
        else:
            role = item.get("role") if isinstance(item, dict) else None
            what = f"role '{role}'" if kind == "message" else f"type '{kind}'"
            raise InvalidRequest(f"Invalid input item at '{param}': {what} is not supported.", param=param,
                                 code="invalid_value")
    return out


def _as_input(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as input: a message's parts as input parts (its output text read back as said)."""
    if item.get("type") != "message":
        return {k: v for k, v in item.items() if k != "id"}
    parts = [{"type": "input_text" if p.get("type") != "output_text" else "output_text", "text": p.get("text", "")}
             for p in item.get("content") or [] if "text" in p]
    return {"type": "message", "role": item["role"], "content": parts}


def _message_item(message_id: str, role: str, content: list[dict[str, Any]], status: str = "completed"
                  ) -> dict[str, Any]:
    parts = []
    for part in content:
        if part.get("type") != "text":
            parts.append({"type": "input_image", "detail": "auto", "file_id": part.get("image_file", {}).get(
                "file_id"), "image_url": part.get("image_url", {}).get("url")})
            continue
        text = part["text"] if isinstance(part["text"], str) else part["text"].get("value", "")
        if role == "assistant":
            text, at = without_markers(text)
            annotations = [_annotation(a, at) for a in (part["text"].get("annotations") or [])] \
                if isinstance(part["text"], dict) else []
            parts.append({"type": "output_text", "text": text, "annotations": annotations, "logprobs": []})
        else:
            parts.append({"type": "input_text", "text": text})
    return {"id": message_id, "type": "message", "role": role, "status": status, "content": parts}


def row_item(row: dict[str, Any]) -> dict[str, Any]:
    """A thread's row (decoded) as a conversation item: the item it holds, or the message it is."""
    return dict(row["item"]) if row.get("item") else message_item(row)


def message_item(message: dict[str, Any], *, logprobs: bool = False) -> dict[str, Any]:
    """A stored message (its API shape, or its row) as a Responses message item; with `logprobs`, its text's
    tokens and their log-probabilities where the row keeps them."""
    item = _message_of(message)
    if logprobs and message.get("logprobs") and item["content"] and item["content"][0]["type"] == "output_text":
        item["content"][0]["logprobs"] = message["logprobs"]
    return item


def _message_of(message: dict[str, Any]) -> dict[str, Any]:
    return _message_item(message["id"], message["role"], message.get("content") or [], message.get("status")
                         or "completed")


# File search's citation markers (tools/file_search.py `marker`), with the space before one. The Assistants face
# keeps them in the text under its file_citation annotations; the real Responses API shows the text without them,
# each citation pointing at where its marker was (`index`). Markers the model wrote that cite nothing go too.
MARKER = re.compile(r" ?【\d+:\d+†([^】\n]*)】")


def without_markers(text: str) -> tuple[str, Callable[[int], int]]:
    """`text` without citation markers, and where a position in `text` falls in the result."""
    spans = [m.span() for m in MARKER.finditer(text)]

    def at(i: int) -> int:
        cut = 0
        for start, end in spans:
            if i < start:
                break
            if i < end:
                return start - cut
            cut += end - start
        return i - cut

    return MARKER.sub("", text), at


def _annotation(a: dict[str, Any], at: Callable[[int], int]) -> dict[str, Any]:
    index = at(a.get("start_index", 0))
    if a.get("type") == "file_citation":
        named = MARKER.fullmatch(a.get("text", ""))
        return {"type": "file_citation", "file_id": a["file_citation"]["file_id"],
                "filename": a.get("x_filename") or (named.group(1) if named else ""), "index": index}
    if a.get("type") == "container_file_citation":
        body = a["container_file_citation"]
        return {"type": "container_file_citation", "container_id": body["container_id"], "file_id": body["file_id"],
                "filename": body["filename"], "start_index": index, "end_index": at(a.get("end_index", 0))}
    if a.get("type") == "file_path":
        return {"type": "file_path", "file_id": a["file_path"]["file_id"], "index": index}
    return a


def call_items(step: dict[str, Any], include: tuple[str, ...], container_id: str) -> list[dict[str, Any]]:
    """A tool_calls step's calls as output items."""
    status = "completed" if step["status"] == "completed" else (
        "in_progress" if step["status"] == "in_progress" else "incomplete")
    out = []
    for call in step["step_details"].get("tool_calls") or []:
        suffix = call["id"].removeprefix("call_")
        if call["type"] == "function":  # written whole before the client sees it: done, output or not
            fn = call["function"]
            out.append({"id": "fc_" + suffix, "type": "function_call", "call_id": call["id"], "name": fn["name"],
                        "arguments": fn.get("arguments") or "",
                        "status": "completed" if status == "in_progress" else status})
        elif call["type"] == "custom":
            body = call["custom"]
            out.append({"id": "ctc_" + suffix, "type": "custom_tool_call", "call_id": call["id"],
                        "name": body["name"], "input": body.get("input") or ""})
        elif call["type"] == "code_interpreter":
            body = call["code_interpreter"]
            outputs = [{"type": "logs", "logs": o["logs"]} if o.get("type") == "logs" else
                       {"type": "image", "url": f"/v1/files/{o['image']['file_id']}/content"}
                       for o in body.get("outputs") or []]
            out.append({"id": "ci_" + suffix, "type": "code_interpreter_call", "code": body.get("input") or "",
                        "container_id": container_id, "status": status,
                        "outputs": outputs if "code_interpreter_call.outputs" in include else None})
        elif call["type"] == "file_search":
            body = call["file_search"]
            results = [{"file_id": r.get("file_id"), "filename": r.get("file_name"), "score": r.get("score"),
                        "text": " ".join(c.get("text", "") for c in r.get("content") or []), "attributes": {}}
                       for r in body.get("results") or []]
            query = body.get("x_query")
            out.append({"id": "fs_" + suffix, "type": "file_search_call", "status": status,
                        "queries": [query] if query else [],
                        "results": results if "file_search_call.results" in include else None})
    return out
