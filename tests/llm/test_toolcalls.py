"""Tool-call grammars and native tool-call syntaxes."""

from __future__ import annotations

import json

import pytest
from llama_cpp import LlamaGrammar

from offline_assistants.llm.backend import AnyJson, Choice, CodeBlock, JsonSchema
from offline_assistants.llm.gbnf import (
    CODE_GRAMMAR,
    choice_grammar,
    compile_constraint,
    json_grammar,
    json_schema_grammar,
)
from offline_assistants.llm.toolcalls import detect_native, parse_native


@pytest.mark.parametrize("grammar", [
    CODE_GRAMMAR,
    choice_grammar([" run Python code.", ' call "odd".', " answer directly."]),
    json_grammar(),
    json_schema_grammar({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    json_schema_grammar(None),
])
def test_grammars_compile(grammar: str) -> None:
    assert LlamaGrammar.from_string(grammar, verbose=False) is not None


def test_each_constraint_type_has_its_grammar() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert compile_constraint(CodeBlock()) == CODE_GRAMMAR
    assert compile_constraint(Choice((" a.", " b."))) == choice_grammar([" a.", " b."])
    assert compile_constraint(AnyJson()) == json_grammar() == compile_constraint(JsonSchema(None))
    assert compile_constraint(JsonSchema(schema)) == json_schema_grammar(schema)


def test_detect_native_formats() -> None:
    assert detect_native("{% if tools %}<tool_call>{% endif %}") == "hermes"
    assert detect_native("<|python_tag|>{{ x }}") == "llama3"
    assert detect_native("[TOOL_CALLS] [") == "mistral"
    assert detect_native("<|im_start|>") is None and detect_native(None) is None


def test_parse_hermes() -> None:
    text = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
            '<tool_call>{"name": "f", "arguments": "{}"}</tool_call>')
    calls = parse_native(text, "hermes")
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"}), ("f", {})]
    assert parse_native("Just an answer.", "hermes") == []
    assert parse_native("<tool_call>{broken</tool_call>", "hermes") == []


def test_parse_llama3() -> None:
    calls = parse_native('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Rome"}}<|eom_id|>', "llama3")
    assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Rome"}
    code = parse_native("<|python_tag|>print(2 + 2)", "llama3")
    assert code[0].name == "python" and json.loads(code[0].arguments) == {"code": "print(2 + 2)"}


def test_parse_mistral() -> None:
    calls = parse_native('[TOOL_CALLS] [{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]',
                         "mistral")
    assert [c.name for c in calls] == ["a", "b"] and json.loads(calls[0].arguments) == {"x": 1}
    assert parse_native("[TOOL_CALLS] not json", "mistral") == []
