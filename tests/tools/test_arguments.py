"""Argument schemas narrowed to what the user's request says (tools/arguments.py)."""

from __future__ import annotations

from offline_assistants.tools.arguments import narrow, numbers, phrases

WEATHER = {"type": "object", "properties": {
    "location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["location"]}


def test_a_named_enum_value_is_the_only_one_left() -> None:
    narrowed = narrow(WEATHER, "How hot is it in Phoenix, in Fahrenheit?")
    assert narrowed is not None and narrowed["properties"]["unit"]["enum"] == ["fahrenheit"]
    assert narrowed["properties"]["location"]["enum"] == ["hot is it in Phoenix", "hot", "Phoenix", "Fahrenheit"]
    assert narrowed["required"] == ["location"]
    assert WEATHER["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]  # the declaration is untouched


def test_nothing_named_leaves_the_schema_as_declared() -> None:
    unit_only = {"type": "object", "properties": {"unit": WEATHER["properties"]["unit"]}}
    assert narrow(unit_only, "What's the weather in San Francisco today?") is unit_only
    assert narrow(WEATHER, "") is WEATHER and narrow(None, "celsius") is None
    nothing_said = {"type": "object", "properties": {"minutes": {"type": "integer"}}}
    assert narrow(nothing_said, "Set a timer, please.") is nothing_said


def test_whole_words_only_and_every_named_value_kept() -> None:
    units = {"type": "object", "properties": {"to": {"type": "string", "enum": ["m", "km", "miles", "mile"]}}}
    narrowed = narrow(units, "Convert 5 km to miles")
    assert narrowed is not None and narrowed["properties"]["to"]["enum"] == ["km", "miles"]


def test_free_strings_quote_a_phrase_of_the_request() -> None:
    narrowed = narrow(WEATHER, "What's the weather in San Francisco today?")
    assert narrowed is not None
    spans = narrowed["properties"]["location"]["enum"]
    assert "San Francisco" in spans and "San Francisco today" in spans
    assert not any(s.split()[0].lower() in {"the", "in", "what's"} for s in spans)  # no function word at an edge
    assert WEATHER["properties"]["location"] == {"type": "string"}


def test_phrases_stay_within_a_clause_and_keep_addresses_and_times_whole() -> None:
    spans = phrases("Email bob@example.org, subject 'Report ready'. Remind me at 09:00.")
    assert "bob@example.org" in spans and "Report ready" in spans and "09:00" in spans
    assert not any("org subject" in s or "ready Remind" in s for s in spans)
    assert all('"' not in s for s in phrases('Say "hi" to him'))  # never a quote the grammar would need escaped


def test_composed_texts_codes_and_formats_stay_free() -> None:
    schema = {"type": "object", "properties": {
        "body": {"type": "string"}, "currency": {"type": "string", "description": "ISO 4217 code, e.g. USD"},
        "day": {"type": "string", "format": "date"}, "to": {"type": "string"}}}
    narrowed = narrow(schema, "Send 20 euros to Alice on Monday")
    assert narrowed is not None
    props = narrowed["properties"]
    assert props["body"] == {"type": "string"} and "enum" not in props["currency"] and "enum" not in props["day"]
    assert "Alice" in props["to"]["enum"]


def test_numbers_the_request_states() -> None:
    assert numbers("Start a 25 minute timer for 2.5 people", integers=False) == [25, 2.5]
    assert numbers("Start a 25 minute timer for 2.5 people", integers=True) == [25]
    assert numbers("Fly on 2025-09-03 at 15:30, flight LH400", integers=True) == []  # dates, times, codes
    schema = {"type": "object", "properties": {"minutes": {"type": "integer", "minimum": 1, "maximum": 60}}}
    narrowed = narrow(schema, "A 25 minute timer, 90 seconds before 100 others")
    assert narrowed is not None and narrowed["properties"]["minutes"]["enum"] == [25]


def test_a_comma_alone_does_not_join_two_values() -> None:
    from offline_assistants.tools.arguments import coordinate

    assert coordinate("What's the temperature in Paris, France in Celsius?", "Paris") is None  # one place
    assert coordinate("Weather in Oslo, Madrid and Rome?", "Oslo") == "Madrid"  # a list: its "and" says so
    assert coordinate("Weather in Paris and in Rome?", "Paris") == "Rome"
