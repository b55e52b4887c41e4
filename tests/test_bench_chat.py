"""benchmarks/chat.py's code (offline_assistants/bench/chat.py) on the scripted model, without llama-cpp-python's
server: the options parse, and a short run of both parts goes through the real server and the SDK, the cold request
and the follow-up with prompts of the same length."""

from __future__ import annotations

import pytest

from offline_assistants.bench.chat import ChatOptions, main, measure
from offline_assistants.bench.common import ModelSetup
from offline_assistants.llm.canned import CannedBackend


def test_help_explains_the_method(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "llama_cpp.server" in out and "--quick" in out and "--followup-history-tokens" in out


def test_a_short_run_without_the_baseline() -> None:
    backend = CannedBackend(["one two three four five six seven eight nine ten eleven twelve"] * 100, n_ctx=8192)
    options = ChatOptions(reps=2, history_tokens=60, max_tokens=16, conversations=1, followup_history_tokens=200,
                          baseline=False, model=ModelSetup(quiet_wait=0, busy=100))  # busy: never discard here
    result = measure(options, backend=backend)
    s, f = result.speed, result.followup
    assert s is not None and f is not None
    assert s.reps == 2 and s.theirs is None and s.tok_s_ratio is None and s.same_output == 0
    assert s.output_tokens == 12 and s.ours.tok_s and s.ours.first_s > 0 and s.prompt_tokens[0] > 60
    # The cold request and the follow-up differ only in the conversation's number: the same length.
    assert f.prompt_tokens[0] == f.prompt_tokens[1] > 200 and f.samples == 1 and f.theirs_ratio is None
    assert min(f.cold_s, f.followup_s) > 0
    line = result.line()
    assert line.startswith("RESULT chat ours_tok_s=") and "llama_cpp_tok_s=na" in line and "backend=scripted" in line


def test_the_baseline_needs_the_model_it_loads() -> None:
    with pytest.raises(ValueError, match="baseline"):
        measure(ChatOptions(), backend=CannedBackend([]))
