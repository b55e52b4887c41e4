"""Ending a call's body that was cut short, so that it still parses: code that runs, arguments that close.

A small model under a grammar can fall into repeating an item (`"Cloudy", "Cloudy", ...`) until its budget is
spent; the grammar keeps every token valid but never ends the call. The engine stops such a call as soon as it
repeats (engine/loops.py), keeps what came before the repetition, and the tool closes it with these.
"""

from __future__ import annotations

import json

_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _open_brackets(text: str, *, python: bool) -> tuple[list[str], str | None]:
    """The brackets still open at the end of `text`, and the quote of a string still open (None: none)."""
    stack: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif python and ch == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif ch in "\"'" and (python or ch == '"'):
            quote = text[i:i + 3] if python and text[i:i + 3] in ('"""', "'''") else ch
            i += len(quote)
            continue
        elif ch in _CLOSERS:
            stack.append(_CLOSERS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
        i += 1
    return stack, quote


def _closed(text: str, *, python: bool) -> str:
    stack, quote = _open_brackets(text, python=python)
    if quote is not None:
        text += quote
    else:
        text = text.rstrip()
        last = text.rsplit("\n", 1)[-1]
        if python and "#" in last and not _open_brackets(last.split("#", 1)[0], python=True)[1]:
            text += "\n"  # the line ends in a comment: the brackets close on the next
        else:
            text = text.rstrip(",").rstrip()
    return text + "".join(reversed(stack))


def close_python(code: str) -> str:
    """`code` with its open strings and brackets closed, dropping trailing lines until it compiles."""
    lines = code.split("\n")
    while lines:
        candidate = _closed("\n".join(lines), python=True)
        try:
            compile(candidate, "<call>", "exec")  # compiled, never run: only whether it parses
        except (SyntaxError, ValueError):
            lines.pop()
            continue
        return candidate
    return ""


def close_json(text: str) -> str:
    """`text`, the start of a JSON value, closed into one that parses: cut back to an earlier comma when the
    end cannot be closed as it is (a key without its value)."""
    cut = len(text)
    while cut > 0:
        candidate = _closed(text[:cut], python=False)
        try:
            json.loads(candidate)
        except json.JSONDecodeError:
            cut = text.rfind(",", 0, cut)
            continue
        return candidate
    return "{}"
