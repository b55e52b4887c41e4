"""Function arguments shaped by what the user said, where the schema allows it.

The grammar makes every call's arguments valid against the function's JSON schema, but a tiny model often picks
the wrong value among valid ones ("fahrenheit" when the user asked for celsius). Where a string `enum` property
has values the user's request names, the schema the grammar enforces is narrowed to those values: the call can
then only say what the user said. Anything the request does not name is left as the function declared it.
"""

from __future__ import annotations

import re
from typing import Any


def _named(value: str, request: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(value)}(?![\w])", request, re.IGNORECASE) is not None


def narrow(schema: dict[str, Any] | None, request: str) -> dict[str, Any] | None:
    """`schema` with each string-enum property restricted to the values `request` names (if it names some)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not request:
        return schema
    properties: dict[str, Any] = {}
    changed = False
    for name, prop in schema["properties"].items():
        enum = prop.get("enum") if isinstance(prop, dict) else None
        if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
            named = [v for v in enum if _named(v, request)]
            if named and len(named) < len(enum):
                prop = {**prop, "enum": named}
                changed = True
        properties[name] = prop
    return {**schema, "properties": properties} if changed else schema
