"""retrieval/filters.py: OpenAI's comparison and compound filters, evaluated and validated (with the bad path)."""

from __future__ import annotations

from typing import Any

import pytest

from offline_assistants.errors import InvalidRequest
from offline_assistants.retrieval.filters import InvalidFilter, matches, validate

ATTRS: dict[str, Any] = {"author": "ada", "year": 2021, "score": 4.5, "draft": False, "date": "2024-03-01"}


def cmp(kind: str, key: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "key": key, "value": value}


@pytest.mark.parametrize(("f", "expected"), [
    (cmp("eq", "author", "ada"), True),
    (cmp("eq", "author", "Ada"), False),  # case matters
    (cmp("ne", "author", "bob"), True),
    (cmp("eq", "year", 2021.0), True),  # one number type
    (cmp("eq", "year", "2021"), False),  # a number is not its string
    (cmp("ne", "year", "2021"), True),
    (cmp("eq", "draft", False), True),
    (cmp("eq", "draft", 0), False),  # a bool is not a number
    (cmp("gt", "year", 2020), True),
    (cmp("gt", "year", 2021), False),
    (cmp("gte", "year", 2021), True),
    (cmp("lt", "score", 5), True),
    (cmp("lte", "score", 4.5), True),
    (cmp("lt", "score", 4.5), False),
    (cmp("gte", "date", "2024-01-01"), True),  # ISO dates order as strings
    (cmp("lt", "date", "2024-01-01"), False),
    (cmp("gt", "author", 3), False),  # across types: false
    (cmp("gt", "draft", False), False),  # booleans have no order
    (cmp("in", "author", ["bob", "ada"]), True),
    (cmp("in", "year", [2020, 2021]), True),
    (cmp("in", "year", ["2021"]), False),
    (cmp("nin", "author", ["bob"]), True),
    (cmp("nin", "author", ["ada"]), False),
    # a missing key fails everything but ne / nin
    (cmp("eq", "missing", "x"), False),
    (cmp("gt", "missing", 0), False),
    (cmp("in", "missing", ["x"]), False),
    (cmp("ne", "missing", "x"), True),
    (cmp("nin", "missing", ["x"]), True),
])
def test_comparisons(f: dict[str, Any], expected: bool) -> None:
    validate(f)
    assert matches(f, ATTRS) is expected


def test_compounds_nest() -> None:
    f = {"type": "and", "filters": [
        cmp("eq", "author", "ada"),
        {"type": "or", "filters": [cmp("lt", "year", 2000), cmp("eq", "draft", False)]},
    ]}
    validate(f)
    assert matches(f, ATTRS)
    assert not matches(f, {**ATTRS, "draft": True})
    assert matches({"type": "or", "filters": [cmp("eq", "author", "bob"), f]}, ATTRS)
    assert not matches(f, None)  # a file without attributes


def test_identities_of_empty_compounds() -> None:
    assert matches({"type": "and", "filters": []}, ATTRS)
    assert not matches({"type": "or", "filters": []}, ATTRS)


@pytest.mark.parametrize(("f", "path"), [
    ("eq", "filters"),
    ({}, "filters.type"),
    ({"type": "like", "key": "a", "value": 1}, "filters.type"),
    (cmp("eq", "", "x"), "filters.key"),
    ({"type": "eq", "key": 3, "value": 1}, "filters.key"),
    ({"type": "eq", "key": "a"}, "filters.value"),
    (cmp("eq", "a", None), "filters.value"),
    (cmp("eq", "a", {"nested": 1}), "filters.value"),
    (cmp("eq", "a", [1, 2]), "filters.value"),
    (cmp("eq", "a", float("nan")), "filters.value"),
    (cmp("in", "a", "ada"), "filters.value"),
    (cmp("in", "a", ["ok", True]), "filters.value[1]"),
    ({"type": "eq", "key": "a", "value": 1, "extra": 2}, "filters.extra"),
    ({"type": "and"}, "filters.filters"),
    ({"type": "and", "filters": []}, "filters.filters"),
    ({"type": "or", "filters": "x"}, "filters.filters"),
    ({"type": "and", "filters": [cmp("eq", "a", 1), {"type": "nope"}]}, "filters.filters[1].type"),
    ({"type": "and", "filters": [cmp("eq", "a", 1), {"type": "or", "filters": [cmp("gt", "k", [])]}]},
     "filters.filters[1].filters[0].value"),
])
def test_validation_names_the_bad_path(f: Any, path: str) -> None:
    with pytest.raises(InvalidFilter) as e:
        validate(f)
    assert e.value.path == path
    assert isinstance(e.value, InvalidRequest) and e.value.status_code == 400 and e.value.param == path
    assert e.value.envelope()["error"]["param"] == path
    assert path in e.value.message


def test_validation_path_prefix_is_the_caller_s() -> None:
    with pytest.raises(InvalidFilter) as e:
        validate({"type": "xor"}, "tools[0].file_search.filters")
    assert e.value.path == "tools[0].file_search.filters.type"


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    f: dict[str, Any] = cmp("eq", "a", 1)
    for _ in range(1000):
        f = {"type": "and", "filters": [f]}
    with pytest.raises(InvalidFilter, match="nested"):
        validate(f)
