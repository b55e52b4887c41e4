"""Argument schemas narrowed to what the user's request says (tools/arguments.py)."""

from __future__ import annotations

from offline_assistants.tools import arguments
from offline_assistants.tools.arguments import dates, narrow, numbers, phrases

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


def test_the_number_beside_a_property_s_name_is_its_value() -> None:
    schema = {"type": "object", "properties": {"base": {"type": "integer"}, "height": {"type": "integer"},
                                               "no_of_adults": {"type": "integer"}}}
    narrowed = narrow(schema, "A triangle with a base of 10 units and height of 5 units, for two adults")
    assert narrowed is not None
    props = narrowed["properties"]
    assert props["base"]["enum"] == [10] and props["height"]["enum"] == [5] and props["no_of_adults"]["enum"] == [2]
    # Not named: any number the request states, as before; number words count only beside a name.
    assert narrow({"type": "object", "properties": {"x": {"type": "integer"}}}, "Add 3 and one more") == {
        "type": "object", "properties": {"x": {"type": "integer", "enum": [3]}}}


def test_dates_are_written_as_the_schema_asks() -> None:
    assert dates("from 2023 April 4th to April 8th?") == ["2023-04-04", "2023-04-08"]
    assert dates("London on the 5th of march 2023") == ["2023-03-05"]
    assert dates("Fremont on March 1st, 2023 and 2025-03-14") == ["2023-03-01", "2025-03-14"]
    assert dates("on May 3rd") == [] and dates("on February 30th 2023") == []  # no year to give; no such day
    schema = {"type": "object", "properties": {"check_in_date": {"type": "string"},
                                               "day": {"type": "string", "description": "The day, YYYY-MM-DD"},
                                               "update": {"type": "string"}}}
    narrowed = narrow(schema, "Book it for March 1st 2023")
    assert narrowed is not None
    props = narrowed["properties"]
    assert props["check_in_date"]["enum"] == ["2023-03-01"] and props["day"]["enum"] == ["2023-03-01"]
    assert "2023-03-01" not in props["update"]["enum"]  # "update" holds the letters, not the word


def test_a_named_switch_is_on_unless_negated_and_then_required() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "include_precipitation": {"type": "boolean"},
                                               "avoid_tolls": {"type": "boolean"}}, "required": ["city"]}
    narrowed = narrow(schema, "Weather in Oslo including the precipitation")
    assert narrowed is not None and narrowed["properties"]["include_precipitation"]["enum"] == [True]
    assert narrowed["required"] == ["city", "include_precipitation"]
    assert narrowed["properties"]["avoid_tolls"] == {"type": "boolean"}  # not named: left free
    off = narrow(schema, "Weather in Oslo, without precipitation")
    assert off is not None and off["properties"]["include_precipitation"]["enum"] == [False]


def test_an_optional_property_with_a_default_the_request_says_nothing_of_is_left_out() -> None:
    schema = {"type": "object", "required": ["weight"], "properties": {
        "weight": {"type": "integer"},
        "climate": {"type": "string", "description": "The climate. Default is 'temperate'."},
        "units": {"type": "string", "enum": ["metric", "imperial"], "default": "metric"},
        "activity": {"type": "string", "default": "moderate"}}}
    narrowed = narrow(schema, "Daily water for someone of 70 kg, imperial, with a high activity level")
    assert narrowed is not None
    assert set(narrowed["properties"]) == {"weight", "units", "activity"}  # climate: no word of it said
    assert narrowed["required"] == ["weight"]
    dated = {"type": "object", "properties": {"city": {"type": "string"},
                                              "date": {"type": "string", "description": "Default is today."}}}
    on_a_day = narrow(dated, "The forecast for Oslo on the 5th of March 2023")
    assert on_a_day is not None and on_a_day["properties"]["date"]["enum"] == ["2023-03-05"]  # a date said


def test_an_object_property_is_narrowed_inside() -> None:
    schema = {"type": "object", "properties": {"update": {"type": "object", "properties": {
        "name": {"type": "string"}, "age": {"type": "integer"}}}}}
    narrowed = narrow(schema, "Set the name to 'John Doe' and the age to 41")
    assert narrowed is not None
    inner = narrowed["properties"]["update"]["properties"]
    assert "John Doe" in inner["name"]["enum"] and inner["age"]["enum"] == [41]
def test_a_comma_alone_does_not_join_two_values() -> None:
    from offline_assistants.tools.arguments import coordinate

    assert coordinate("What's the temperature in Paris, France in Celsius?", "Paris") is None  # one place
    assert coordinate("Weather in Oslo, Madrid and Rome?", "Oslo") == "Madrid"  # a list: its "and" says so
    assert coordinate("Weather in Paris and in Rome?", "Paris") == "Rome"


def test_a_call_needs_the_values_only_the_user_can_give() -> None:
    bmi = {"type": "object", "properties": {"weight": {"type": "number"}, "height": {"type": "integer"},
                                            "units": {"type": "string"}, "system": {"type": "integer", "enum": [1, 2]}},
           "required": ["weight", "height", "units", "system"]}
    says = arguments.says_required_values
    assert not says(bmi, "What is my body mass index?")
    assert not says(bmi, "My BMI at 70 kg?")  # one number for two
    assert says(bmi, "BMI for 70 kg and 175 cm")
    assert says(bmi, "BMI for seventy... no: for 70.5 kg, height one hundred seventy")  # words count too
    assert says({"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
                "Put $10,000 aside")
    assert says({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "Weather?")
    assert says(None, "anything") and says({"type": "object", "properties": {}}, "")
    mail = {"type": "object", "properties": {"to_email": {"type": "string"}, "body": {"type": "string"}},
            "required": ["to_email", "body"]}
    assert not says(mail, "Email John that I am late.") and says(mail, "Email john@example.com that I am late.")
    api = {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}
    assert not says(api, "Weather in Turin?") and says(api, "Fetch https://api.example.com/weather for Turin")
