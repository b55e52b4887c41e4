"""An answer never shows a tool call, or a tool's reply, written as text.

The decision said "answer", yet a model trained on tool calls may still start one in free text (`<tool_call>`,
a Mistral `[TOOL_CALLS]`), or echo the `<tool_response>` tags it just read. Shown to the user, that reads as a
broken answer, so the answer ends where such text begins: `Leaks` holds back each piece that could be the start
of a marker until it can tell, and the executor halts the model once one is found.
"""

from __future__ import annotations

from offline_assistants.llm.toolcalls import LEAKS, CallSyntax


class Leaks:
    def __init__(self, syntax: CallSyntax | None) -> None:
        markers = set(LEAKS)
        if syntax is not None and syntax.native:
            markers.add(syntax.marker)
        self.markers = tuple(markers)
        self.found = False
        self.held = ""  # text that may be the start of a marker

    def feed(self, piece: str) -> str:
        """What of `piece` may be shown now."""
        if self.found:
            return ""
        text = self.held + piece
        cut = min((i for i in (text.find(m) for m in self.markers) if i >= 0), default=-1)
        if cut >= 0:
            self.found = True
            self.held = ""
            return text[:cut].rstrip()
        keep = max((n for m in self.markers for n in range(1, len(m)) if text.endswith(m[:n])), default=0)
        shown = text[: len(text) - keep]
        keep += len(shown) - len(shown.rstrip())  # and the spaces before it: an answer cut there ends clean
        self.held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def finish(self) -> str:
        """What was held back, once the answer is over and it turned out to be no marker."""
        rest, self.held = ("" if self.found else self.held), ""
        return rest
