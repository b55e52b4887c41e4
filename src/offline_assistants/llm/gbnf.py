"""The output constraints of llm/backend.py as llama.cpp GBNF grammars: the only place that speaks GBNF."""

from __future__ import annotations

import json
from typing import Any

from offline_assistants.llm.backend import AnyJson, Choice, CodeBlock, Constraint, JsonSchema

# Python source up to a closing fence: lines without backticks, so the fence can only come at the end.
# (Unbounded repetition: a bounded {0,N} expands into N nested rules and samples 3x slower.)
CODE_GRAMMAR = r'''root ::= line ("\n" line)* "\n```"
line ::= [^\n`]*'''


def gbnf_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid GBNF literal for our alphabet


def choice_grammar(options: list[str]) -> str:
    return "root ::= " + " | ".join(gbnf_string(o) for o in options)


def json_schema_grammar(schema: dict[str, Any] | None) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if not schema or (schema.get("type") == "object" and "properties" not in schema):
        return json_grammar()  # no properties declared: any JSON object ("properties": {} is only `{}`)
    return str(json_schema_to_gbnf(json.dumps(schema)))


def json_grammar() -> str:
    from llama_cpp.llama_grammar import JSON_GBNF

    return JSON_GBNF


def compile_constraint(constraint: Constraint) -> str:
    if isinstance(constraint, Choice):
        return choice_grammar(list(constraint.options))
    if isinstance(constraint, JsonSchema):
        return json_schema_grammar(constraint.schema)
    if isinstance(constraint, AnyJson):
        return json_grammar()
    if isinstance(constraint, CodeBlock):
        return CODE_GRAMMAR
    raise TypeError(f"no grammar for {constraint!r}")
