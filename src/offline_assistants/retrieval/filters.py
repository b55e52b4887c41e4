"""OpenAI's attribute filters for file search: which files' chunks a search may return.

    ComparisonFilter  {"type": "eq"|"ne"|"gt"|"gte"|"lt"|"lte"|"in"|"nin", "key": str, "value": ...}
    CompoundFilter    {"type": "and"|"or", "filters": [ComparisonFilter | CompoundFilter, ...]}

`value` is a string, number or boolean; for `in`/`nin` a list of strings and numbers (as in the current API).
Filters arrive as JSON, so they are handled as plain mappings: `validate` checks one and raises `InvalidFilter`
with the path of the first bad part ("filters.filters[1].type"), `matches` evaluates a valid one against a file's
`attributes` (at most 16 keys of str, number or bool).

Semantics, where the API documentation is silent (our choices, kept consistent):

* Types must agree: a bool is not a number (JSON keeps them apart even where Python's True == 1 does not), and a
  number is never equal to its string. `eq` across types is false, `ne` true.
* `gt`/`gte`/`lt`/`lte` order numbers numerically and strings by code point (so ISO-8601 dates compare as
  dates); across types, or on booleans, they are false.
* A missing key fails every comparison except `ne` and `nin`, which it passes: a file without a "category" is
  "not category X", as a user who excludes one category would expect.
* An empty `and` is true and an empty `or` false (the identities); `validate` rejects empty lists anyway, since
  a request with one is almost certainly a mistake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from offline_assistants.errors import InvalidRequest

Scalar = str | int | float | bool


class ComparisonFilter(TypedDict):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str
    value: Scalar | list[str | int | float]


class CompoundFilter(TypedDict):
    type: Literal["and", "or"]
    filters: list[ComparisonFilter | CompoundFilter]


Filter = ComparisonFilter | CompoundFilter

COMPARISONS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
COMPOUNDS = frozenset({"and", "or"})
MAX_DEPTH = 32  # nesting deeper than this is no filter a person wrote, and recursion has a limit


class InvalidFilter(InvalidRequest):
    """A 400 invalid_request_error whose `param` is the path of the bad part of the filter."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"Invalid value for '{path}': {message}", param=path)
        self.path = path


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(f: Any, path: str = "filters") -> None:
    """Raise InvalidFilter (path of the first problem) unless f is a well-formed filter."""
    _validate(f, path, 0)


def _validate(f: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidFilter(path, f"filters may be nested at most {MAX_DEPTH} deep.")
    if not isinstance(f, Mapping):
        raise InvalidFilter(path, "expected an object.")
    kind = f.get("type")
    if not isinstance(kind, str) or kind not in COMPARISONS | COMPOUNDS:
        allowed = ", ".join(f"'{t}'" for t in [*sorted(COMPARISONS), *sorted(COMPOUNDS)])
        raise InvalidFilter(f"{path}.type", f"expected one of {allowed}.")
    if kind in COMPOUNDS:
        _no_extra(f, {"type", "filters"}, path)
        subs = f.get("filters")
        if not isinstance(subs, Sequence) or isinstance(subs, (str, bytes)):
            raise InvalidFilter(f"{path}.filters", "expected an array of filters.")
        if not subs:
            raise InvalidFilter(f"{path}.filters", "expected at least one filter.")
        for i, sub in enumerate(subs):
            _validate(sub, f"{path}.filters[{i}]", depth + 1)
        return
    _no_extra(f, {"type", "key", "value"}, path)
    key = f.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidFilter(f"{path}.key", "expected a non-empty string.")
    if "value" not in f:
        raise InvalidFilter(f"{path}.value", "missing required parameter.")
    value = f["value"]
    if kind in ("in", "nin"):
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise InvalidFilter(f"{path}.value", f"'{kind}' expects an array of strings or numbers.")
        for i, item in enumerate(value):
            if not (isinstance(item, str) or _is_number(item)) or not _finite(item):
                raise InvalidFilter(f"{path}.value[{i}]", "expected a string or a number.")
        return
    if not isinstance(value, (str, int, float, bool)) or not _finite(value):
        raise InvalidFilter(f"{path}.value", "expected a string, a number or a boolean.")


def _finite(v: Any) -> bool:
    return not isinstance(v, float) or math.isfinite(v)


def _no_extra(f: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for name in f:
        if name not in allowed:
            raise InvalidFilter(f"{path}.{name}", "unknown parameter.")


def matches(f: Mapping[str, Any], attributes: Mapping[str, Any] | None) -> bool:
    """Whether a file with these attributes passes a valid filter (validate first: this one trusts its input)."""
    attrs = attributes or {}
    kind = f["type"]
    if kind == "and":
        return all(matches(sub, attrs) for sub in f["filters"])
    if kind == "or":
        return any(matches(sub, attrs) for sub in f["filters"])
    key, value = f["key"], f["value"]
    if key not in attrs:
        return kind in ("ne", "nin")
    actual = attrs[key]
    if kind == "eq":
        return _same(actual, value)
    if kind == "ne":
        return not _same(actual, value)
    if kind == "in":
        return any(_same(actual, v) for v in value)
    if kind == "nin":
        return not any(_same(actual, v) for v in value)
    return _order(kind, actual, value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)  # 3 == 3.0: JSON has one number type
    return type(a) is type(b) and bool(a == b)


def _order(kind: str, a: Any, b: Any) -> bool:
    if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if kind == "gt":
        return bool(a > b)
    if kind == "gte":
        return bool(a >= b)
    if kind == "lt":
        return bool(a < b)
    return bool(a <= b)  # lte
