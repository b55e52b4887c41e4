"""Turn pydantic's validation errors into the real API's 400 errors: message, `param` and `code` alike."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from offline_assistants.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)

_JSON_HINT = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library "
    "correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}


def _param(loc: tuple[Any, ...]) -> str:
    # `tools[0].function.name`, the way the real API names a nested field; drop pydantic's union-branch labels.
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part.startswith("function-after") or part in _UNION_TAGS):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


_UNION_TAGS = {"str", "list[...]", "code_interpreter", "file_search", "function", "text", "image_file", "image_url",
               "json_object", "json_schema", "literal['auto']", "literal['none','auto','required']"}


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def to_invalid_request(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    # Prefer the most telling error: an unknown or missing field beats a union's "wrong branch" noise.
    rank = {"extra_forbidden": 0, "missing": 1, "json_invalid": -1}
    err = sorted(errors, key=lambda e: rank.get(e["type"], 2))[0]
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    param = _param(loc) or None
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        return InvalidRequest(_JSON_HINT)
    if kind == "extra_forbidden":
        return InvalidRequest(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind in _TYPE_NAMES:
        return InvalidRequest(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, but got {_got(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind in ("less_than_equal", "less_than"):
        limit = ctx.get("le", ctx.get("lt"))
        code = "integer_above_max_value" if isinstance(value, int) else "decimal_above_max_value"
        return InvalidRequest(
            f"Invalid '{param}': {'integer' if isinstance(value, int) else 'decimal'} above maximum value. "
            f"Expected a value <= {limit}, but got {value} instead.",
            param=param,
            code=code,
        )
    if kind in ("greater_than_equal", "greater_than"):
        limit = ctx.get("ge", ctx.get("gt"))
        code = "integer_below_min_value" if isinstance(value, int) else "decimal_below_min_value"
        return InvalidRequest(
            f"Invalid '{param}': {'integer' if isinstance(value, int) else 'decimal'} below minimum value. "
            f"Expected a value >= {limit}, but got {value} instead.",
            param=param,
            code=code,
        )
    if kind == "string_too_long":
        return InvalidRequest(
            f"Invalid '{param}': string too long. Expected a string with maximum length {ctx.get('max_length')}, "
            f"but got a string with length {len(value) if isinstance(value, str) else '?'} instead.",
            param=param,
            code="string_above_max_length",
        )
    if kind == "too_long":
        return InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length {ctx.get('max_length')}, "
            f"but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="array_above_max_length",
        )
    if kind in ("object_above_max_properties", "string_above_max_length", "missing_required_parameter"):
        return InvalidRequest(err["msg"], param=param, code=kind)
    if kind in ("literal_error", "enum", "union_tag_invalid", "string_pattern_mismatch"):
        return InvalidRequest(f"Invalid value: {value!r}. {err['msg']}.", param=param, code="invalid_value")
    return InvalidRequest(f"Invalid '{param}': {err['msg']}.", param=param, code="invalid_value")


def parse_body(model: type[M], body: bytes) -> M:
    """Validate a JSON body strictly (no "5" for 5), as the real API does; an empty body is an empty object."""
    try:
        return model.model_validate_json(body if body.strip() else b"{}", strict=True)
    except ValidationError as exc:
        raise to_invalid_request(exc) from None


def parse_query(model: type[M], params: dict[str, Any]) -> M:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise to_invalid_request(exc) from None
