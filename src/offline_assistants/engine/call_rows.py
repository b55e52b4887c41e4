"""A conversation keeps its tool calls: the calls a run makes there, and their outputs, become rows of its thread.

In a thread a run's calls live in its steps and reach the model as the run's own exchanges. A conversation (the
Responses face) lists them as items, and a later response must read them in order, so there each call is written
as a row the moment it is made (a function call when the run stops for its output, the output when it comes; a
call that runs here with its output), under the id its output item has (`fc_...`, `ci_...`). The window then
covers them like messages, and the run keeps only their results for the answer to quote (turn.Exchange).
"""

from __future__ import annotations

from typing import Any

from offline_assistants.engine.response_items import call_items
from offline_assistants.engine.threads import item_row
from offline_assistants.engine.turn import Turn
from offline_assistants.ids import PREFIXES
from offline_assistants.llm.backend import ModelBackend
from offline_assistants.llm.toolcalls import CallSyntax
from offline_assistants.store import Store
from offline_assistants.tools.base import Tool, ToolCall

OUTPUT_TYPES = {"function": "function_call_output", "custom": "custom_tool_call_output"}


def keeps_calls(thread_id: str) -> bool:
    return thread_id.startswith(PREFIXES["conversation"])


class CallRows:
    def __init__(self, store: Store, backend: ModelBackend, syntax: CallSyntax) -> None:
        self.store = store
        self.backend = backend
        self.syntax = syntax

    def _item(self, turn: Turn, call: ToolCall) -> dict[str, Any]:
        container = ((turn.tool_resources or {}).get("code_interpreter") or {}).get("container_id") or ""
        step = {"status": "completed", "step_details": {"tool_calls": [call.to_api()]}}
        [item] = call_items(step, ("code_interpreter_call.outputs",), container)
        return item

    def _append(self, turn: Turn, item: dict[str, Any], role: str, text: str, tokens: list[int]) -> None:
        if not self.store.messages.exists(item["id"]):
            values, tokens = item_row(turn.thread_id, item, role, text, tokens)
            self.store.messages.insert_row({**values, "run_id": turn.run_id}, tokens)

    def waiting(self, turn: Turn, calls: list[tuple[Tool, ToolCall]]) -> None:
        """Calls the client runs, written as the run stops for their outputs."""
        for tool, call in calls:
            written = tool.written(call)
            text = self.syntax.call(written.name, written.arguments)
            tokens = (self.backend.encode_exchange([written], []) if self.syntax.native
                      else self.backend.encode_message("assistant", tool.transcript(call)))
            self._append(turn, self._item(turn, call), "assistant", text, tokens)

    def answered(self, turn: Turn, calls: list[tuple[Tool, ToolCall]], results: list[str]) -> None:
        """Calls with their results: a client's output after its call's row, or a call that ran here, whole."""
        for (tool, call), result in zip(calls, results):
            item = self._item(turn, call)
            output = OUTPUT_TYPES.get(call.type)
            reply = result if self.syntax.native else tool.reply(result)
            if output is not None:
                self.waiting(turn, [(tool, call)])  # its row, if the run did not stop for it (resumed elsewhere)
                out = {"id": f"{item['id']}_output", "type": output, "call_id": call.id, "output": result,
                       "status": "completed"}
                self._append(turn, out, "tool", reply, self.backend.encode_message("tool", reply))
                continue
            written = tool.written(call)
            tokens = (self.backend.encode_exchange([written], [result]) if self.syntax.native
                      else self.backend.encode_message("assistant", tool.transcript(call))
                      + self.backend.encode_message("tool", reply))
            self._append(turn, item, "assistant", f"{tool.transcript(call)}\n{reply}", tokens)
