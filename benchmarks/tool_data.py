"""The labelled sets of benchmarks/tool_decisions.py, and how an outcome is judged against them.

Two sources, so that what is fitted on one can be checked on the other:

* ours: data/tool_decisions.jsonl over the function specs of data/tool_catalogue.json (written for this project;
  engine/decision.py's constants were first fitted on it).
* BFCL: the Berkeley Function Calling Leaderboard's data (other authors' functions and phrasings), read from the
  `bfcl-eval` wheel as published on PyPI (Apache-2.0), never copied into this repository. Fetch it once with

      pip download --no-deps bfcl-eval==2026.3.23 -d ~/.cache/offline-assistants

  (--bfcl-wheel says where it is, if elsewhere; its sha256 is checked, since the selection depends on the data).

The BFCL items are selected by a fixed rule, before and regardless of any result:
  relevant    every 13th item of simple_python (by id number) and every 8th of live_simple, among those with one
              user message in ASCII: one function each, with BFCL's possible answers; and every live_relevance
              item with one user message in ASCII and at most 4 functions (any call is right; arguments unscored).
  irrelevant  the hard case only: items of irrelevance and live_irrelevance whose request shares a content word
              (BFCL_STOP left out, Snowball stems) with an offered function's name or description; one user
              message in ASCII, at most 4 functions; every 3rd of irrelevance and every 9th of live_irrelevance.
Then each source's items are split in two by the sha256 of their ids (in that order, alternately "tune" and
"heldout"), so both halves hold as many of each. The tune half may be fitted and cross-validated on; the held-out
half is only reported.

An item is a dict: id, category, request, tools (names), specs (OpenAI tool specs), expect ({"answer": true},
{"code": true} or {"calls": [{"name", "arguments"}]}, BFCL calls with "possible": {arg: [acceptable values]}).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import snowballstemmer

DATA = Path(__file__).resolve().parent / "data"
CODE = "code_interpreter"
LOCATION_KEYS = {"location", "origin", "destination"}
SETS = ["ours", "bfcl-tune", "bfcl-heldout"]
OURS_CATEGORIES = ["single", "none", "parallel", "code", "code_none"]
BFCL_CATEGORIES = ["relevant", "irrelevant"]
HALVES = ["tune", "heldout"]

BFCL_VERSION = "2026.3.23"
BFCL_SHA256 = "3bb6dfa5f0c68ad403c9ec50b00db2bb3b4cc9b38ab1ff33f48fe30d853d3a0a"
BFCL_WHEEL = Path.home() / ".cache" / "offline-assistants" / f"bfcl_eval-{BFCL_VERSION}-py3-none-any.whl"
BFCL_FETCH = f"pip download --no-deps bfcl-eval=={BFCL_VERSION} -d ~/.cache/offline-assistants"
# (file, every k-th, needs a shared word, has possible answers)
BFCL_SOURCES = [("simple_python", 13, False, True), ("live_simple", 8, False, True),
                ("live_relevance", 1, False, False),
                ("irrelevance", 3, True, False), ("live_irrelevance", 9, True, False)]
MAX_FUNCTIONS = 4
# The selection rule's own stop words (not the engine's: changing the engine must not change the set).
BFCL_STOP = frozenset("""
a an the in on at to for of from by with about into and or but if then than as is are was were be been am do does
did i me my you your we our us he him his she her they them their it its this that these those what which who whom
whose when where why how please can could would will should may might must some any all there here also just not
no yes get use using given give
""".split())
# BFCL's parameter types as JSON Schema ("any": no type at all).
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer", "string": "string",
              "boolean": "boolean", "array": "array"}

_stemmer = snowballstemmer.stemmer("english")


# --- our set ---------------------------------------------------------------------------------------------------

def load_ours(data: Path = DATA / "tool_decisions.jsonl", catalogue: Path = DATA / "tool_catalogue.json"
              ) -> list[dict[str, Any]]:
    specs = {t["function"]["name"]: t for t in json.loads(catalogue.read_text())}
    with open(data) as f:
        items = [json.loads(line) for line in f if line.strip()]
    for item in items:
        item["specs"] = [{"type": CODE} if name == CODE else specs[name] for name in item["tools"]]
    return items


def load(name: str, wheel: Path = BFCL_WHEEL) -> list[dict[str, Any]]:
    """The items of a set named in SETS."""
    return load_ours() if name == "ours" else load_bfcl(name.removeprefix("bfcl-"), wheel)


def select(items: list[dict[str, Any]], *, ids: list[str] | None = None, categories: list[str] | None = None,
           limit: int | None = None) -> list[dict[str, Any]]:
    """Only the items named in `ids` (all must exist), of `categories`, the first `limit` of each category."""
    if ids is not None:
        items = [i for i in items if i["id"] in ids]
        missing = set(ids) - {i["id"] for i in items}
        if missing:
            raise SystemExit(f"ids not in the data: {sorted(missing)}")
    if categories:
        items = [i for i in items if i["category"] in categories]
    if limit is not None:
        items = [i for n, i in enumerate(items) if sum(j["category"] == i["category"] for j in items[:n]) < limit]
    if not items:
        raise SystemExit("no items selected")
    return items


# --- BFCL ------------------------------------------------------------------------------------------------------

def load_bfcl(half: str, wheel: Path = BFCL_WHEEL) -> list[dict[str, Any]]:
    """The BFCL items of one half ("tune" or "heldout"), in a fixed order."""
    if not wheel.is_file():
        raise SystemExit(f"the BFCL data is not at {wheel}: fetch it with\n  {BFCL_FETCH}\n(or say --bfcl-wheel)")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != BFCL_SHA256:
        raise SystemExit(f"{wheel} has sha256 {digest}, not bfcl-eval {BFCL_VERSION}'s {BFCL_SHA256}")
    items = []
    with zipfile.ZipFile(wheel) as z:
        for name, every, hard, answered in BFCL_SOURCES:
            rows = _jsonl(z, f"bfcl_eval/data/BFCL_v4_{name}.json")
            answers = ({r["id"]: r["ground_truth"] for r in _jsonl(z, f"bfcl_eval/data/possible_answer/"
                                                                     f"BFCL_v4_{name}.json")} if answered else {})
            kept = [r for r in sorted(rows, key=_id_order) if _usable(r) and (not hard or _shares_a_word(r))]
            chosen = sorted(kept[::every], key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
            items += [_bfcl_item(r, name, answers.get(r["id"])) for r in chosen[HALVES.index(half)::2]]
    return items


def _jsonl(z: zipfile.ZipFile, path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in z.read(path).decode().splitlines() if line.strip()]


def _id_order(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", row["id"]))


def _usable(row: dict[str, Any]) -> bool:
    turns = row["question"]
    return (len(turns) == 1 and [m["role"] for m in turns[0]] == ["user"] and turns[0][0]["content"].isascii()
            and len(row["function"]) <= MAX_FUNCTIONS)


def _content(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", re.sub(r"[_.]", " ", text).lower())
    return {_stemmer.stemWord(w) for w in words if len(w) > 2 and w not in BFCL_STOP}


def _shares_a_word(row: dict[str, Any]) -> bool:
    said = _content(row["question"][0][0]["content"])
    return any(said & _content(f"{fn['name']} {fn.get('description') or ''}") for fn in row["function"])


def _bfcl_item(row: dict[str, Any], source: str, truth: list[dict[str, Any]] | None) -> dict[str, Any]:
    specs = [openai_spec(fn) for fn in row["function"]]
    if source.endswith("irrelevance"):
        category, expect = "irrelevant", {"answer": True}
    elif truth:
        (name, possible), = truth[0].items()
        category, expect = "relevant", {"calls": [{"name": openai_name(name), "possible": possible}]}
    else:
        category, expect = "relevant", {"calls": [{"name": None}]}  # any call of an offered function
    return {"id": row["id"], "category": category, "request": row["question"][0][0]["content"],
            "tools": [s["function"]["name"] for s in specs], "specs": specs, "expect": expect}


def openai_name(name: str) -> str:
    """OpenAI function names are [a-zA-Z0-9_-]: BFCL's dotted names ("math.hypot") with underscores."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64]


def openai_spec(fn: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": openai_name(fn["name"]), "description": fn.get("description")
                                             or "", "parameters": json_schema(fn.get("parameters") or {})}}


def json_schema(schema: Any) -> Any:
    """A BFCL parameter schema as JSON Schema: its types renamed, "any" left untyped, a tuple an array."""
    if isinstance(schema, list):
        return [json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            if value.lower() in BFCL_TYPES:
                out["type"] = BFCL_TYPES[value.lower()]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = json_schema(value)
        else:
            out[key] = value
    return out


# --- judging arguments -----------------------------------------------------------------------------------------

def _norm(value: Any) -> str:
    text = str(value).strip().strip("\"'").strip()
    if text.endswith("."):
        text = text[:-1].rstrip()
    return text.casefold()


def value_matches(key: str, expected: Any, got: Any) -> bool:
    """Our set's rule: strings case-insensitively, trimmed; numbers numerically; location-like keys accept a longer
    value that starts with the expected one ("San Francisco, CA" for "San Francisco")."""
    if isinstance(expected, bool):
        return got is expected or (isinstance(got, str) and got.strip().lower() == str(expected).lower())
    if isinstance(expected, (int, float)):
        try:
            return abs(float(got) - float(expected)) <= 1e-9 * max(1.0, abs(float(expected)))
        except (TypeError, ValueError):
            return False
    if isinstance(expected, list):
        return isinstance(got, list) and sorted(map(_norm, got)) == sorted(map(_norm, expected))
    if got is None or isinstance(got, (dict, list)):
        return False
    if key in LOCATION_KEYS:
        return _norm(got).startswith(_norm(expected))
    return _norm(got) == _norm(expected)


def args_match(call: dict[str, Any], got: dict[str, Any] | None) -> bool:
    """Whether the arguments `got` are right for the expected `call` (ours: every expected argument matches,
    others are free; BFCL: its possible answers)."""
    if got is None:
        return False
    if "possible" in call:
        return possible_match(call["possible"], got)
    return all(k in got and value_matches(k, v, got[k]) for k, v in call["arguments"].items())


def possible_match(possible: dict[str, list[Any]], got: dict[str, Any]) -> bool:
    """BFCL's rule: every argument given is one the answer lists, with one of its acceptable values; every
    argument whose list lacks "" (optional) is given."""
    if any(key not in possible for key in got):
        return False
    for key, accepted in possible.items():
        if key not in got:
            if "" not in accepted:
                return False
        elif not any(_accepts(a, got[key]) for a in accepted if a != ""):
            return False
    return True


def _squeeze(text: str) -> str:
    return re.sub(r"[\s,./\-_*^'\"]", "", text).casefold()


def _accepts(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(expected, bool) and got is expected
    if isinstance(expected, (int, float)):
        return isinstance(got, (int, float)) and float(got) == float(expected)
    if isinstance(expected, str):
        return isinstance(got, str) and _squeeze(got) == _squeeze(expected)
    if isinstance(expected, list):
        return isinstance(got, list) and len(got) == len(expected) and all(map(_accepts, expected, got))
    if isinstance(expected, dict):
        return isinstance(got, dict) and possible_match(
            {k: v if isinstance(v, list) else [v] for k, v in expected.items()}, got)
    return bool(expected == got)


# --- judging an outcome ---------------------------------------------------------------------------------------

def expected_kind(item: dict[str, Any]) -> str:
    expect = item["expect"]
    if expect.get("calls"):
        return "call"
    if expect.get("code"):
        return "code"
    return "answer"


def parse_args_json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def cover(expected: list[dict[str, Any]], got: list[dict[str, Any]], with_args: bool) -> bool:
    """Every expected call is matched by a distinct call made (by name; with_args: by name and arguments)."""
    left = list(got)
    for exp in expected:
        found = next((g for g in left if g["name"] == exp["name"]
                      and (not with_args or args_match(exp, g["args"]))), None)
        if found is None:
            return False
        left.remove(found)
    return True


def score(item: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    kind = expected_kind(item)
    got = res["outcome"]
    s: dict[str, Any] = {"expected": kind, "decision_ok": got == kind}
    if kind == "call":
        exp_calls = item["expect"]["calls"]
        calls = res["calls"]
        anything = exp_calls[0]["name"] is None  # BFCL's live_relevance: any call of an offered function
        s["right_tool"] = got == "call" and (anything or {c["name"] for c in calls} == {c["name"] for c in exp_calls})
        s["abstain"] = got == "answer"
        if len(exp_calls) == 1 and not anything:
            right = s["right_tool"] and args_match(exp_calls[0], calls[0]["args"])
            s["args_exact"] = right
            if s["right_tool"]:
                s["arg_match"] = right
        if len(exp_calls) > 1:
            first = res["calls_first_turn"]
            s["parallel_one_turn"] = got == "call" and cover(exp_calls, first, False)
            s["parallel_one_turn_args"] = got == "call" and cover(exp_calls, first, True)
            s["parallel_both"] = got == "call" and cover(exp_calls, calls, False)
            s["parallel_both_args"] = got == "call" and cover(exp_calls, calls, True)
    elif kind == "code":
        s["code_abstain"] = got == "answer"
    else:
        s["false_call"] = got in ("call", "code")
        s["abstain_irrelevant"] = got == "answer"
    return s


def rate(rows: list[dict[str, Any]], key: str) -> tuple[int, int]:
    vals = [r["score"][key] for r in rows if key in r["score"]]
    return sum(bool(v) for v in vals), len(vals)


def fmt_rate(hit: int, n: int) -> str:
    return f"{hit / n:.3f}" if n else "na"
