"""A response's stream: the run's events, as the Responses API streams them.

The engine speaks in runs, steps and messages (engine/events.py); this face renders them as the events of
openai-python's `ResponseStreamEvent` union, numbered from 0, in the order its `responses.stream()` accumulator
demands: `response.created` first, an item's `output_item.added` before its deltas, a message's
`content_part.added` before its text, each item's `.done` before the one terminal event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from offline_assistants.engine.events import Event
from offline_assistants.engine.response_items import call_items, message_item, without_markers

TERMINAL = {"thread.run.completed": "response.completed", "thread.run.requires_action": "response.completed",
            "thread.run.incomplete": "response.incomplete", "thread.run.failed": "response.failed",
            "thread.run.cancelled": "response.failed", "thread.run.expired": "response.failed"}
# The terminal event of a response that ended with this status (the union has no event of its own for cancelled).
ENDING = {"completed": "response.completed", "incomplete": "response.incomplete", "failed": "response.failed",
          "cancelled": "response.failed"}

Out = list[dict[str, Any]]  # events, each with its `type` and `sequence_number`


class ResponseEvents:
    """Turns one run's events into one response's events. `snapshot` renders the response as stored now."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], container_id: str) -> None:
        self.snapshot = snapshot
        self.container_id = container_id
        self.seq = 0
        self.index: dict[str, int] = {}  # item id -> output_index
        self.open: dict[str, dict[str, Any]] = {}  # items added and not yet done, by id
        self.calls: dict[tuple[str, int], str] = {}  # (step id, call index) -> item id
        self.written: dict[str, str] = {}  # message id -> its text so far, as the run wrote it (markers and all)
        self.shown: dict[str, str] = {}  # message id -> the text its deltas have shown
        self.finished = False

    def _emit(self, out: Out, kind: str, **data: Any) -> None:
        out.append({"type": kind, "sequence_number": self.seq, **data})
        self.seq += 1

    def _early(self, status: str) -> dict[str, Any]:
        """The response as the stream's opening events show it: nothing written yet (the run may be further along
        by the time it is read; its items come as their own events)."""
        return {**self.snapshot(), "status": status, "output": [], "usage": None, "completed_at": None}

    def start(self, background: bool = False) -> Out:
        out: Out = []
        self._emit(out, "response.created", response=self._early("queued" if background else "in_progress"))
        if background:
            self._emit(out, "response.queued", response=self._early("queued"))
        return out

    def feed(self, event: Event) -> Out:
        out: Out = []
        name, data = event.event, event.data
        if name == "thread.run.in_progress":
            self._emit(out, "response.in_progress", response=self._early("in_progress"))
        elif name == "thread.run.step.delta":
            self._step_delta(out, data)
        elif name == "thread.run.step.completed" and data.get("type") == "tool_calls":
            self._calls_done(out, data)
        elif name == "thread.message.created":
            item = message_item(data)
            self._add(out, item)
            self._emit(out, "response.content_part.added", item_id=item["id"], output_index=self.index[item["id"]],
                       content_index=0, part={"type": "output_text", "text": "", "annotations": [], "logprobs": []})
        elif name == "thread.message.delta":
            for part in data["delta"].get("content") or []:
                piece = (part.get("text") or {}).get("value")
                if piece:
                    self.written[data["id"]] = self.written.get(data["id"], "") + piece
                    self._show(out, data["id"], _settled(self.written[data["id"]]))
        elif name in ("thread.message.completed", "thread.message.incomplete"):
            self._message_done(out, data)
        elif name in TERMINAL:
            for item_id in list(self.open):  # a call waiting for its output is done as far as this response goes
                self._done(out, self.open[item_id])
            self._emit(out, TERMINAL[name], response=self.snapshot())
            self.finished = True
        return out

    def close(self, response: dict[str, Any]) -> Out:
        """The terminal event of a response whose run ended while nothing recorded it (the server stopped)."""
        out: Out = []
        self._emit(out, ENDING[response["status"]], response=response)
        self.finished = True
        return out

    def _add(self, out: Out, item: dict[str, Any]) -> None:
        self.index[item["id"]] = len(self.index)
        self.open[item["id"]] = item
        added = {**item, "status": "in_progress"}
        if item["type"] == "message":
            added["content"] = []
        self._emit(out, "response.output_item.added", output_index=self.index[item["id"]], item=added)

    def _done(self, out: Out, item: dict[str, Any]) -> None:
        self.open.pop(item["id"], None)
        i = self.index[item["id"]]
        if item["type"] == "function_call":
            self._emit(out, "response.function_call_arguments.done", item_id=item["id"], output_index=i,
                       name=item["name"], arguments=item["arguments"])
        elif item["type"] == "custom_tool_call":
            self._emit(out, "response.custom_tool_call_input.done", item_id=item["id"], output_index=i,
                       input=item["input"])
        elif item["type"] == "code_interpreter_call":
            self._emit(out, "response.code_interpreter_call_code.done", item_id=item["id"], output_index=i,
                       code=item["code"])
            self._emit(out, "response.code_interpreter_call.interpreting", item_id=item["id"], output_index=i)
            self._emit(out, "response.code_interpreter_call.completed", item_id=item["id"], output_index=i)
        elif item["type"] == "file_search_call":
            self._emit(out, "response.file_search_call.searching", item_id=item["id"], output_index=i)
            self._emit(out, "response.file_search_call.completed", item_id=item["id"], output_index=i)
        self._emit(out, "response.output_item.done", output_index=i, item={**item, "status": "completed"}
                   if item["type"] != "message" else item)

    def _step_delta(self, out: Out, data: dict[str, Any]) -> None:
        for call in (data["delta"].get("step_details") or {}).get("tool_calls") or []:
            key = (data["id"], call["index"])
            if key not in self.calls and call.get("id"):
                step = {"status": "in_progress", "step_details": {"tool_calls": [_whole(call)]}}
                [item] = call_items(step, (), self.container_id)
                self.calls[key] = item["id"]
                self._add(out, item)
                if item["type"] == "code_interpreter_call":
                    self._emit(out, "response.code_interpreter_call.in_progress", item_id=item["id"],
                               output_index=self.index[item["id"]])
                elif item["type"] == "file_search_call":
                    self._emit(out, "response.file_search_call.in_progress", item_id=item["id"],
                               output_index=self.index[item["id"]])
                continue
            item_id = self.calls.get(key)
            if item_id is None or item_id not in self.open:
                continue
            item, i = self.open[item_id], self.index[item_id]
            if call["type"] == "function" and (call.get("function") or {}).get("arguments"):
                piece = call["function"]["arguments"]
                item["arguments"] += piece
                self._emit(out, "response.function_call_arguments.delta", item_id=item_id, output_index=i,
                           delta=piece)
            elif call["type"] == "custom" and (call.get("custom") or {}).get("input"):
                piece = call["custom"]["input"]
                item["input"] += piece
                self._emit(out, "response.custom_tool_call_input.delta", item_id=item_id, output_index=i,
                           delta=piece)
            elif call["type"] == "code_interpreter" and (call.get("code_interpreter") or {}).get("input"):
                piece = call["code_interpreter"]["input"]
                item["code"] += piece
                self._emit(out, "response.code_interpreter_call_code.delta", item_id=item_id, output_index=i,
                           delta=piece)

    def _calls_done(self, out: Out, step: dict[str, Any]) -> None:
        for item in call_items(step, ("code_interpreter_call.outputs",), self.container_id):
            if item["id"] in self.open:
                self._done(out, item)

    def _show(self, out: Out, item_id: str, text: str) -> None:
        """A delta of what `text` adds to what the message's deltas have shown."""
        shown = self.shown.get(item_id, "")
        if len(text) > len(shown) and text.startswith(shown):
            self.shown[item_id] = text
            self._emit(out, "response.output_text.delta", item_id=item_id, output_index=self.index[item_id],
                       content_index=0, delta=text[len(shown):], logprobs=[])

    def _message_done(self, out: Out, message: dict[str, Any]) -> None:
        item = message_item(message)
        if item["id"] not in self.open:
            return
        i = self.index[item["id"]]
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        part: dict[str, Any] = item["content"][0] if item["content"] else empty
        self._show(out, item["id"], part["text"])  # what was held back: a space, or what was not a marker
        self._emit(out, "response.output_text.done", item_id=item["id"], output_index=i, content_index=0,
                   text=part["text"], logprobs=[])
        for n, annotation in enumerate(part.get("annotations") or []):
            self._emit(out, "response.output_text.annotation.added", item_id=item["id"], output_index=i,
                       content_index=0, annotation_index=n, annotation=annotation)
        self._emit(out, "response.content_part.done", item_id=item["id"], output_index=i, content_index=0,
                   part=part)
        self._done(out, item)


def _settled(text: str) -> str:
    """What of a message's text so far its deltas can show: the text without citation markers (as the stored item
    has it, engine/response_items.py), holding back a marker still being written and a space that may be one's."""
    opened = text.rfind("【")
    if opened >= 0 and "】" not in text[opened:]:
        text = text[:opened]
    return without_markers(text.removesuffix(" "))[0]


def _whole(call: dict[str, Any]) -> dict[str, Any]:
    """A call's opening delta as a stored call (the fields the step keeps once it is written)."""
    body = dict(call.get(call["type"]) or {})
    if call["type"] == "function":
        body.setdefault("arguments", "")
    if call["type"] == "custom":
        body.setdefault("input", "")
    return {"id": call["id"], "type": call["type"], call["type"]: body}
