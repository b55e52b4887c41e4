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
    """`tools[0].function.name`, the way the real API names a nested field, without pydantic's union-branch labels.

    A discriminated union adds its tag to the location (`tools, 0, function, function, name`): the tag sits right
    after a list index or after a union label, and a field that happens to share the tag's name (`function`,
    `tool_resources.file_search`) must stay.
    """
    out = ""
    prev_was_label = False
    prev: Any = None
    for part in loc:
        dropped = False
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part.startswith("function-") or part in _BRANCH_LABELS):
            dropped = True
        elif isinstance(part, str) and part in _TAGS and (isinstance(prev, int) or prev_was_label):
            dropped = True
        else:
            out += ("." if out else "") + str(part)
        prev_was_label = dropped and not (isinstance(part, str) and part in _TAGS)
        prev = part
    return out


# Labels pydantic gives the branches of plain unions (`str | list[...]`), and the tags of our discriminated unions.
_BRANCH_LABELS = {"str", "constrained-str"}
_TAGS = {"code_interpreter", "file_search", "function", "extension", "text", "image_file", "image_url", "json_object",
         "json_schema"}


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


def _rank(err: Any) -> tuple[int, int]:
    """Which of several errors to report: an unknown or missing field beats a union's "wrong branch" noise, a
    wrong value beats a wrong type (the branch whose type matched is the one the client meant), deeper beats
    shallower (the input got further in that branch)."""
    kind = err["type"]
    if kind == "json_invalid":
        rank = -1
    elif kind == "extra_forbidden":
        rank = 0
    elif kind == "missing":
        rank = 1
    elif kind in _TYPE_NAMES or (kind == "literal_error" and not isinstance(err.get("input"), (str, int, float))):
        rank = 3
    else:
        rank = 2
    return rank, -len(err["loc"])


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_invalid_request(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    err = sorted(errors, key=_rank)[0]
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
        if param is None:  # the body itself is not an object
            return InvalidRequest(
                f"Invalid body: expected {_TYPE_NAMES[kind]}, but got {_got(value)} instead.", code="invalid_type"
            )
        return InvalidRequest(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, but got {_got(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind in ("less_than_equal", "less_than", "greater_than_equal", "greater_than"):
        # The field's type decides the wording, not the value's: `temperature: 3` is a decimal above 2, and a
        # query string's "101" is an integer above 100. Pydantic keeps a float field's bound as a float.
        above = kind.startswith("less")
        limit = ctx.get("le", ctx.get("lt")) if above else ctx.get("ge", ctx.get("gt"))
        number = "decimal" if isinstance(limit, float) else "integer"
        op = ("<=" if kind == "less_than_equal" else "<") if above else (">=" if kind == "greater_than_equal" else ">")
        return InvalidRequest(
            f"Invalid '{param}': {number} {'above maximum' if above else 'below minimum'} value. "
            f"Expected a value {op} {_number(limit)}, but got {_number(value)} instead.",
            param=param,
            code=f"{number}_{'above_max' if above else 'below_min'}_value",
        )
    if kind == "too_short" and ctx.get("min_length") == 1 and ctx.get("actual_length") == 0:
        return InvalidRequest(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array "
            "instead.",
            param=param,
            code="empty_array",
        )
    if kind == "string_too_short" and value == "":
        return InvalidRequest(
            f"Invalid '{param}': empty string. Expected a string with minimum length {ctx.get('min_length')}, "
            "but got an empty string instead.",
            param=param,
            code="empty_string",
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
    if kind in ("literal_error", "enum", "union_tag_invalid", "invalid_tool_type", "string_pattern_mismatch"):
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
