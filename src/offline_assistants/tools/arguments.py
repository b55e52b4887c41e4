"""Function arguments shaped by what the user said, where the schema allows it.

The grammar makes every call's arguments valid against the function's JSON schema, but a tiny model often picks
the wrong value among valid ones: "fahrenheit" when the user asked for celsius, "Pitcairn Islands" for Phoenix,
a timer of 2 minutes when 25 were asked for (benchmarks/tool_decisions.py). So, before the call is written, the
schema the grammar enforces is narrowed by the user's request:

* a string `enum` whose values the request names is restricted to those values;
* a free string property (no enum, format or pattern; not a composed text such as an email body; not a code the
  user would not type, such as an ISO currency code) may only hold a phrase of the request: one to
  MAX_SPAN_WORDS consecutive words within a clause, not starting or ending with a function word;
* a number or integer property may only hold a number the request states, when it states any.

Anything the request gives nothing for is left as the function declared it. The call can then only say what the
user said, which is what a small model gets wrong most and a user checks first.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_SPAN_WORDS = 6
# Words that carry no content: never the edge of a quoted phrase, never evidence that a tool fits.
FUNCTION_WORDS = frozenset("""
a an the in on at to for of from by with about into onto and or but nor so if then than as is are was were be been
am do does did i me my mine you your we our us he him his she her they them their it its it's this that these those
what what's which who whom whose when where why how please can could would will shall should may might must
some any all there here also just up out off over not no yes oh hi hey thanks thank
get use using
""".split())
MAX_SPANS = 200
# Properties whose value is composed, not quoted: left free.
COMPOSED = {"body", "content", "message", "description", "notes", "summary", "code", "reply", "answer"}
# Descriptions that ask for an identifier the user does not type as such (ISO codes, ids).
NOT_QUOTED = re.compile(r"\b(code|ISO|id|identifier|uuid|url)\b", re.IGNORECASE)
_CLAUSES = re.compile(r"[,;!?]+|\.(?:\s|$)")
_STRIP = "\"'“”‘’()[]{}<>.:*`?!,;"
_CONJUNCTION = re.compile(r"\b(?:and|or|vs\.?|versus)\b|&", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.:/-])-?\d+(?:\.\d+)?(?![\w:/-]|\.\d)")


def _named(value: str, request: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(value)}(?![\w])", request, re.IGNORECASE) is not None


def phrases(request: str) -> list[str]:
    """The phrases of `request` a string argument may quote, longest-first within each starting word."""
    found: dict[str, None] = {}
    for clause in _CLAUSES.split(request):
        words = [w.strip(_STRIP) for w in clause.split()]
        words = [w for w in words if w and '"' not in w and "\\" not in w]
        for i, first in enumerate(words):
            if first.lower() in FUNCTION_WORDS:
                continue
            for j in range(min(len(words), i + MAX_SPAN_WORDS), i, -1):
                if words[j - 1].lower() not in FUNCTION_WORDS:
                    found.setdefault(" ".join(words[i:j]), None)
    return list(found)[:MAX_SPANS]


def numbers(request: str, *, integers: bool) -> list[int | float]:
    """The numbers `request` states on their own (not parts of dates, times, codes or words)."""
    out: dict[int | float, None] = {}
    for match in _NUMBER.findall(request):
        value = float(match)
        if value.is_integer():
            out.setdefault(int(value), None)
        elif not integers:
            out.setdefault(value, None)
    return list(out)


def _quotable(name: str, prop: dict[str, Any]) -> bool:
    if prop.get("type") != "string" or any(k in prop for k in ("enum", "const", "format", "pattern")):
        return False
    return name.lower() not in COMPOSED and not NOT_QUOTED.search(prop.get("description") or "")


def _narrowed(name: str, prop: Any, request: str, spans: list[str]) -> Any:
    if not isinstance(prop, dict):
        return prop
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        named = [v for v in enum if _named(v, request)]
        return {**prop, "enum": named} if named and len(named) < len(enum) else prop
    if _quotable(name, prop) and spans:
        return {**prop, "enum": spans}
    if prop.get("type") in ("number", "integer") and not any(k in prop for k in ("enum", "const")):
        stated = numbers(request, integers=prop["type"] == "integer")
        low, high = prop.get("minimum"), prop.get("maximum")
        stated = [n for n in stated if (low is None or n >= low) and (high is None or n <= high)]
        return {**prop, "enum": stated} if stated else prop
    return prop


def coordinate(request: str, value: str) -> str | None:
    """The phrase `request` joins to `value` ("Paris and Rome", "AAPL or GOOGL", "Oslo, Madrid"): the other
    thing of the same kind, asked for alongside it. As many words as `value`, function words skipped."""
    if not value.strip():
        return None
    if not _CONJUNCTION.search(request) and re.search(rf"(?<![\w]){re.escape(value)}\s*,\s*\w", request, re.IGNORECASE):
        # A comma alone does not join two things of a kind: "Paris, France" is one place, "Oslo, Madrid and
        # Rome" a list (its "and" says so).
        return None
    size = len(value.split())
    after = re.search(rf"(?<![\w]){re.escape(value)}\s*(?:,|\band\b|\bor\b|&|\bvs\.?|\bversus\b)\s*(.+)",
                      request, re.IGNORECASE)
    before = re.search(rf"(.+?)\s*(?:,|\band\b|\bor\b|&|\bvs\.?|\bversus\b)\s*(?:\w+\s+){{0,2}}?"
                       rf"{re.escape(value)}(?![\w])", request, re.IGNORECASE)
    if after is not None:
        words = [w.strip(_STRIP) for w in after.group(1).split()]
        words = [w for w in words if w]
        while words and words[0].lower() in FUNCTION_WORDS:
            words.pop(0)
        found = words[:size]
    elif before is not None:
        words = [w.strip(_STRIP) for w in before.group(1).split()]
        words = [w for w in words if w]
        while words and words[-1].lower() in FUNCTION_WORDS:
            words.pop()
        found = words[-size:]
    else:
        return None
    if len(found) < size or any(w.lower() in FUNCTION_WORDS for w in (found[0], found[-1])):
        return None
    other = " ".join(found)
    return other if other.lower() != value.lower() and '"' not in other and "\\" not in other else None


def narrow(schema: dict[str, Any] | None, request: str) -> dict[str, Any] | None:
    """`schema` with each property restricted to what `request` says for it (if it says anything)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not request:
        return schema
    spans = phrases(request)
    properties = {name: _narrowed(name, prop, request, spans) for name, prop in schema["properties"].items()}
    changed = any(properties[n] is not p for n, p in schema["properties"].items())
    return {**schema, "properties": properties} if changed else schema


def repeat(schema: dict[str, Any] | None, arguments: str, request: str) -> dict[str, Any] | None:
    """For a call just written with `arguments`: the value a second call of the same function should hold
    instead, when the request joins another one to a value the call quoted ("weather in Paris and in Rome"
    -> {"location": "Rome"}). None when the request asks for one thing."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None
    try:
        written = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    if not isinstance(written, dict):
        return None
    for name, prop in schema["properties"].items():
        value = written.get(name)
        if not isinstance(value, str) or not isinstance(prop, dict) or not _named(value, request):
            continue
        other = coordinate(request, value)
        if other is None:
            continue
        enum = prop.get("enum")
        if isinstance(enum, list):
            canonical = next((v for v in enum if isinstance(v, str) and v.lower() == other.lower()), None)
            if canonical is not None:
                return {name: canonical}
        elif _quotable(name, prop):
            return {name: other}
    return None


def fix(schema: dict[str, Any] | None, values: dict[str, Any]) -> dict[str, Any] | None:
    """`schema` with each property in `values` held to that one value, and required."""
    if not values or not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return schema
    properties = dict(schema["properties"])
    for name, value in values.items():
        properties[name] = {**(properties.get(name) or {}), "enum": [value]}
    required = list(schema.get("required") or [])
    required += [name for name in values if name not in required]
    return {**schema, "properties": properties, "required": required}
