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
from offline_assistants.llm.toolcalls import OURS, SYNTAXES, detect_native, syntax_for


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


def test_each_syntax_writes_a_call_that_parses() -> None:
    arguments = json.dumps({"city": "Oslo"})
    hermes = SYNTAXES["hermes"].call("get_weather", arguments)
    assert hermes.startswith("<tool_call>\n") and hermes.endswith("\n</tool_call>")
    assert json.loads(hermes[len("<tool_call>"):-len("</tool_call>")]) == {"name": "get_weather",
                                                                          "arguments": {"city": "Oslo"}}
    assert json.loads(SYNTAXES["llama3"].call("get_weather", arguments)) == {"name": "get_weather",
                                                                             "parameters": {"city": "Oslo"}}
    mistral = SYNTAXES["mistral"].call("get_weather", arguments)
    assert json.loads(mistral.removeprefix("[TOOL_CALLS]")) == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert OURS.call("f", "{}") == SYNTAXES["hermes"].call("f", "{}") and not OURS.native


def test_syntax_for_a_model() -> None:
    assert syntax_for("hermes") is SYNTAXES["hermes"] and syntax_for(None) is OURS
