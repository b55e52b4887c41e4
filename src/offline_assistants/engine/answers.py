"""An answer never shows a tool call, or a tool's reply, written as text.

The decision said "answer", yet a model trained on tool calls may still start one in free text (`<tool_call>`, a
Mistral `[TOOL_CALLS]`, or the bare JSON `{"name": ..., "arguments": ...}` Qwen writes once it has seen tools),
or echo the `<tool_response>` tags it just read. Shown to the user, that reads as a broken answer, so the answer
ends where such text begins: `Leaks` holds back each piece that could be the start of one until it can tell,
and the executor halts the model once one is found (engine/executor.py says what an answer that was nothing but
a call becomes).
"""

from __future__ import annotations

import re

from offline_assistants.llm.template import CHATML_MARKERS
from offline_assistants.llm.toolcalls import LEAKS, CallSyntax

CALL_JSON = re.compile(r'\{\s*"name"\s*:')  # a call as a bare JSON object, as Hermes and Llama 3 models write one
_CALL_JSON_START = re.compile(r'\{\s*(?:"(?:n(?:a(?:m(?:e(?:"\s*)?)?)?)?)?)?')  # what may still become one


class Leaks:
    def __init__(self, syntax: CallSyntax | None, *, tools: bool = True, stops: tuple[str, ...] = ()) -> None:
        markers = set(CHATML_MARKERS)  # a turn's end written as text ends the answer too, tools or not
        markers.update(s for s in stops if s)  # a request's stop sequences: the answer ends before one
        if tools:
            markers.update(LEAKS)
        if tools and syntax is not None and syntax.native:
            markers.add(syntax.marker)
        self.tools = tools
        self.markers = tuple(markers)
        self.found = False
        self.held = ""  # text that may be the start of a marker

    def _cut(self, text: str) -> int:
        found = [i for i in (text.find(m) for m in self.markers) if i >= 0]
        match = CALL_JSON.search(text) if self.tools else None
        if match:
            found.append(match.start())
        return min(found, default=-1)

    def _pending(self, text: str) -> int:
        """How many characters at the end of `text` may be the start of a marker."""
        keep = max((n for m in self.markers for n in range(1, len(m)) if text.endswith(m[:n])), default=0)
        brace = text.rfind("{") if self.tools else -1
        if brace >= 0 and _CALL_JSON_START.fullmatch(text, brace):
            keep = max(keep, len(text) - brace)
        return keep

    def feed(self, piece: str) -> str:
        """What of `piece` may be shown now."""
        if self.found:
            return ""
        text = self.held + piece
        cut = self._cut(text)
        if cut >= 0:
            self.found = True
            self.held = ""
            return text[:cut].rstrip()
        keep = self._pending(text)
        shown = text[: len(text) - keep]
        keep += len(shown) - len(shown.rstrip())  # and the spaces before it: an answer cut there ends clean
        self.held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def finish(self) -> str:
        """What was held back, once the answer is over and it turned out to be no marker."""
        rest, self.held = ("" if self.found else self.held), ""
        return rest
