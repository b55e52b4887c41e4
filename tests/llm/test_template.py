"""Chat templates cut into per-message pieces: the pieces joined must equal the template's own rendering."""

from __future__ import annotations

from offline_assistants.llm.backend import ModelBackend
from offline_assistants.llm.template import ANSWER_CUE, CHATML, ChatTemplate

LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
ALTERNATING = (
    "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('roles must alternate') }}{% endif %}{{ m['content'] }}{% endfor %}"
)


def _joined(t: ChatTemplate, messages: list[dict[str, str]]) -> str:
    return t.system(messages[0]["content"]) + "".join(t.message(m["role"], m["content"]) for m in messages[1:]) \
        + t.generation_prefix()


def test_pieces_join_to_the_full_rendering() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]
    for source in (CHATML, LLAMA3):
        t = ChatTemplate(source, bos_token="<s>")
        assert t.native
        assert _joined(t, messages) == t.render(messages, add_generation_prompt=True)


def test_a_template_that_cannot_be_cut_falls_back_to_chatml() -> None:
    t = ChatTemplate(ALTERNATING)
    assert not t.native and t.source == CHATML
    assert t.message("user", "x") == "<|im_start|>user\nx<|im_end|>\n"


def test_tools_reach_templates_that_render_them() -> None:
    t = ChatTemplate("{% for m in messages %}{{ m['content'] }}{% endfor %}{% if tools %}|{{ tools[0]['function']"
                     "['name'] }}{% endif %}")
    assert t.system("S", [{"type": "function", "function": {"name": "f"}}]) == "S|f"
    assert t.system("S") == "S"


def test_embedded_model_template_and_tokens(real_backend: ModelBackend) -> None:
    # SmolLM2 speaks ChatML; its per-message tokens concatenate to the tokens of the whole rendering.
    backend = real_backend
    tokens = backend.encode_system("Be brief.") + backend.encode_message("user", "Hi") + backend.generation_prefix()
    whole = backend.tokenizer.tokenize(  # type: ignore[attr-defined]
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokens == whole
    assert backend.native_tool_format is None


def test_a_tool_result_is_followed_by_the_answer_cue_unless_the_template_has_a_tool_syntax() -> None:
    assert ChatTemplate(CHATML).message("tool", "42") == f"<|im_start|>tool\n42\n\n{ANSWER_CUE}<|im_end|>\n"
    # A template without a tool role shows the result as the user's, cue included.
    assert ChatTemplate(ALTERNATING).message("tool", "42").endswith(f"42\n\n{ANSWER_CUE}<|im_end|>\n")
    hermes = ChatTemplate(CHATML + "{# <tool_call> #}")  # a template that writes calls in Hermes' syntax
    assert hermes.tool_syntax and hermes.message("tool", "42") == "<|im_start|>tool\n42<|im_end|>\n"
