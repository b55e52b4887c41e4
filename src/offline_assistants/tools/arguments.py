"""Function arguments shaped by what the user said, where the schema allows it.

The grammar makes every call's arguments valid against the function's JSON schema, but a tiny model often picks
the wrong value among valid ones: "fahrenheit" when the user asked for celsius, "Pitcairn Islands" for Phoenix,
a timer of 2 minutes when 25 were asked for (benchmarks/tool_decisions.py). So, before the call is written, the
schema the grammar enforces is narrowed by the user's request:

* a string `enum` whose values the request names is restricted to those values;
* a free string property (no enum, format or pattern; not a composed text such as an email body; not a code the
  user would not type, such as an ISO currency code) may only hold a phrase of the request: one to
  MAX_SPAN_WORDS consecutive words within a clause, not starting or ending with a function word;
* a number or integer property may only hold a number the request states, when it states any; the number the
  request puts next to the property's own name ("a base of 10", "two adults"), when it does;
* a date property (its name or description says date) may only hold the dates the request states, written
  YYYY-MM-DD ("March 1st 2023", "the 5th of march 2023");
* a boolean property whose name the request names ("including the precipitation" for include_precipitation) is
  required, and true unless a negation comes just before ("without tolls");
* an optional property with a declared default that the request says nothing about (neither its name nor one of
  its enum values, nor a date for a date) is left out: the model otherwise fills it with whatever phrase is at hand;
* an object property is narrowed the same way, property by property.

Anything the request gives nothing for is left as the function declared it. The call can then only say what the
user said, which is what a small model gets wrong most and a user checks first. Measured on BFCL items
(benchmarks/tool_decisions.py --set bfcl-*): see engine/decision.py.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import lru_cache
from typing import Any

import snowballstemmer

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
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_stemmer = snowballstemmer.stemmer("english")
# Counts said in words, next to what they count ("two adults"): read only beside a property's name.
NUMBER_WORDS = {w: n for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
NEAR_WORDS = 3  # how far a number may stand from the word that names it
MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s*(\d{4}))?"
_DATES = [  # (pattern, which groups hold year, month, day)
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), (1, 2, 3)),
    (re.compile(rf"\b(\d{{4}})\s+{_MONTH}\s+{_DAY}\b", re.IGNORECASE), (1, 2, 3)),
    (re.compile(rf"\b{_MONTH}\s+{_DAY}\b{_YEAR}", re.IGNORECASE), (3, 1, 2)),
    (re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}", re.IGNORECASE), (3, 2, 1)),
]
_DATE_FIELD = re.compile(r"\bdate\b|YYYY-MM-DD", re.IGNORECASE)
_DEFAULTED = re.compile(r"\bdefaults?\b|\bif not (?:provided|specified|given)\b", re.IGNORECASE)
_NEGATION = {"no", "not", "without", "never", "don't", "dont", "exclude", "excluding", "except"}


def stems(text: str) -> frozenset[str]:
    """The content-word stems of `text` (function words and words under three letters left out): Snowball's
    English stemmer, so "trading" meets "trade"."""
    words = [w.lower() for w in _WORD.findall(text.replace("_", " "))]
    return frozenset(_stemmer.stemWords([w for w in words if len(w) > 2 and w not in FUNCTION_WORDS]))


def _spaced(name: str) -> str:
    """Identifier words apart: "check_in_date", "startDate" -> "check in date", "start Date"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ")


@lru_cache(maxsize=1024)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word.lower()))


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


# A number as said: digits ("$10,000", "5%", "1.5", "2024") or a word for one.
_SAID_NUMBER = re.compile(
    r"(?<![\w.])[-+]?\$?\d[\d,]*(?:\.\d+)?%?|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|half|dozen|couple)\b", re.IGNORECASE)


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_LINK = re.compile(r"https?://|\bwww\.|\b[\w-]+\.(?:com|org|net|io|dev|ai|edu|gov)\b", re.IGNORECASE)


def _needs(name: str, prop: dict[str, Any]) -> re.Pattern[str] | None:
    """What a required string property's value must be seen as in the user's words: an address or a link."""
    if prop.get("type") != "string" or "enum" in prop:
        return None
    lowered = name.lower()
    if "email" in lowered:
        return _EMAIL
    if lowered in ("url", "uri", "link", "endpoint") or lowered.endswith(("_url", "_uri")):
        return _LINK
    return None


def says_required_values(schema: dict[str, Any] | None, said: str) -> bool:
    """Whether `said` holds what `schema` requires that only the user can give: as many numbers as it requires
    number properties (those without an enum), an email address for a required email, a link for a required URL.

    A call the user gave no such value for would have to make it up: such a request is answered (the model can
    ask for it), not called. Checked on three labelled sets of two sources (benchmarks/tool_data.py): it turned
    down none of the 37, 35 and 65 requests that need the call, and found 8 of 33, 10 of 31 and 4 of 51 that need
    none ("What is the closest integer to 30?" with get_closest_prime(number, skip); "Weather in Turin?" with a
    weather API that takes a `url`)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return True
    props = schema["properties"]
    required = [(name, props[name]) for name in schema.get("required") or [] if isinstance(props.get(name), dict)]
    wanted = sum(1 for _, prop in required if prop.get("type") in ("number", "integer") and "enum" not in prop)
    if wanted and len(_SAID_NUMBER.findall(said)) < wanted:
        return False
    return all(pattern.search(said) for name, prop in required if (pattern := _needs(name, prop)) is not None)


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


def dates(request: str) -> list[str]:
    """The dates `request` states, as YYYY-MM-DD; a date without its year takes the one year the request states."""
    years = set(re.findall(r"(?<![\w-])(\d{4})(?![\w-])", request))
    found: dict[tuple[int, int], str] = {}  # by where they start: one date is not read twice
    for pattern, (y, m, d) in _DATES:
        for match in pattern.finditer(request):
            if any(start <= match.start() < end for start, end in found):
                continue
            month = match.group(m)
            month_number = int(month) if month.isdigit() else MONTHS[month[:3].lower()]
            year = match.group(y) or (next(iter(years)) if len(years) == 1 else None)
            if year is None:
                continue
            try:
                day = date(int(year), month_number, int(match.group(d)))
            except ValueError:
                continue
            found[match.span()] = day.isoformat()
    return list(dict.fromkeys(found[span] for span in sorted(found)))


def _named_words(name: str, request: str) -> list[int]:
    """Where in `request` (word positions, split at spaces) a word of the property's name stands."""
    wanted = stems(_spaced(name))
    return [i for i, w in enumerate(request.split()) if _stem(w.strip(_STRIP)) in wanted]


def _number_by_name(name: str, request: str, integers: bool) -> int | float | None:
    """The number nearest to the property's name in the request, within NEAR_WORDS words ("a base of 10",
    "two adults"); after it first when two are as near."""
    words = [w.strip(_STRIP).lower() for w in request.split()]
    near: list[tuple[int, int, int | float]] = []
    for at in _named_words(name, request):
        for i in range(max(0, at - NEAR_WORDS), min(len(words), at + NEAR_WORDS + 1)):
            stated = [NUMBER_WORDS[words[i]]] if words[i] in NUMBER_WORDS else numbers(words[i], integers=integers)
            near += [(abs(i - at), i < at, n) for n in stated]
    return min(near)[2] if near else None


def _switch(name: str, request: str) -> bool | None:
    """A boolean the request turns on by naming it, or off with a negation just before; None if not named."""
    named = _named_words(name, request)
    if not named:
        return None
    words = [w.strip(_STRIP).lower() for w in request.split()]
    return not any(words[i] in _NEGATION for at in named for i in range(max(0, at - 2), at))


def _says_nothing_of(name: str, prop: dict[str, Any], request: str) -> bool:
    enum = prop.get("enum")
    named = isinstance(enum, list) and any(isinstance(v, str) and _named(v, request) for v in enum)
    return not named and not _named_words(name, request) and not (_is_date(name, prop) and dates(request))


def _is_date(name: str, prop: dict[str, Any]) -> bool:
    return prop.get("type") == "string" and "enum" not in prop and bool(
        _DATE_FIELD.search(f"{_spaced(name)} {prop.get('description') or ''}"))


def _defaulted(prop: Any) -> bool:
    return isinstance(prop, dict) and ("default" in prop or bool(_DEFAULTED.search(prop.get("description") or "")))


def _narrowed(name: str, prop: Any, request: str, spans: list[str]) -> Any:
    if not isinstance(prop, dict):
        return prop
    if prop.get("type") == "object" and isinstance(prop.get("properties"), dict):
        return narrow(prop, request) or prop
    if prop.get("type") == "boolean" and "enum" not in prop:
        on = _switch(name, request)
        return prop if on is None else {**prop, "enum": [on]}
    if _is_date(name, prop):
        stated = dates(request)
        return {**prop, "enum": stated} if stated else prop
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        named = [v for v in enum if _named(v, request)]
        return {**prop, "enum": named} if named and len(named) < len(enum) else prop
    if _quotable(name, prop) and spans:
        return {**prop, "enum": spans}
    if prop.get("type") in ("number", "integer") and not any(k in prop for k in ("enum", "const")):
        by_name = _number_by_name(name, request, prop["type"] == "integer")
        values = [by_name] if by_name is not None else numbers(request, integers=prop["type"] == "integer")
        low, high = prop.get("minimum"), prop.get("maximum")
        values = [n for n in values if (low is None or n >= low) and (high is None or n <= high)]
        return {**prop, "enum": values} if values else prop
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
    required = list(schema.get("required") or [])
    properties = {name: _narrowed(name, prop, request, spans) for name, prop in schema["properties"].items()
                  if name in required or not _defaulted(prop) or not _says_nothing_of(name, prop, request)}
    switched = [n for n, p in properties.items() if n not in required and isinstance(p, dict)
                and p.get("type") == "boolean" and p is not schema["properties"][n]]
    changed = len(properties) < len(schema["properties"]) or any(
        properties[n] is not schema["properties"][n] for n in properties)
    if not changed:
        return schema
    return {**schema, "properties": properties, **({"required": required + switched} if switched else {})}


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
