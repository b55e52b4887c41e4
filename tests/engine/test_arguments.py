"""Argument schemas narrowed to the enum values the user named (engine/arguments.py)."""

from __future__ import annotations

from offline_assistants.engine.arguments import narrow

WEATHER = {"type": "object", "properties": {
    "location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["location"]}


def test_a_named_enum_value_is_the_only_one_left() -> None:
    narrowed = narrow(WEATHER, "How hot is it in Phoenix, in Fahrenheit?")
    assert narrowed is not None and narrowed["properties"]["unit"]["enum"] == ["fahrenheit"]
    assert narrowed["properties"]["location"] == {"type": "string"} and narrowed["required"] == ["location"]
    assert WEATHER["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]  # the declaration is untouched


def test_nothing_named_leaves_the_schema_as_declared() -> None:
    assert narrow(WEATHER, "What's the weather in San Francisco today?") is WEATHER
    assert narrow(WEATHER, "") is WEATHER and narrow(None, "celsius") is None


def test_whole_words_only_and_every_named_value_kept() -> None:
    units = {"type": "object", "properties": {"to": {"type": "string", "enum": ["m", "km", "miles", "mile"]}}}
    narrowed = narrow(units, "Convert 5 km to miles")
    assert narrowed is not None and narrowed["properties"]["to"]["enum"] == ["km", "miles"]
