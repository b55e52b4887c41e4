"""benchmarks/responses.py's code (offline_assistants/bench/responses.py) on the scripted model: the options parse,
and a short run of both parts goes through the real server and the SDK with the same contexts on every side."""

from __future__ import annotations

import pytest

from offline_assistants.bench.common import ModelSetup
from offline_assistants.bench.responses import ResponsesOptions, main, measure
from offline_assistants.llm.canned import CannedBackend


def test_help_explains_the_method(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "previous_response_id" in out and "--quick" in out and "--face-max-tokens" in out


def test_a_short_run_compares_the_same_contexts() -> None:
    backend = CannedBackend(["one two three four five six seven eight nine ten eleven twelve"] * 100, n_ctx=8192)
    options = ResponsesOptions(turns=6, followups=2, cold=1, reps=2, face_history_tokens=60, face_max_tokens=16,
                               model=ModelSetup(quiet_wait=0, busy=100))  # busy: never discard on a loaded box
    result = measure(options, backend=backend)
    f, g = result.followups, result.faces
    assert f is not None and g is not None
    # The follow-ups and the cold response saw the same context: 6 turns and the 7th question.
    assert f.cold_input_tokens == f.chain_input_tokens == f.conversation_input_tokens > 6 * 2 * 12
    assert f.samples == (1, 2, 2) and min(f.cold_s, f.chain_s, f.conversation_s) > 0
    assert g.reps == 2 and g.same_input == 2 and g.same_output == 2 and g.output_tokens == 12
    assert g.assistants_tok_s and g.responses_tok_s and g.assistants_s > 0 and g.responses_s > 0
    line = result.line()
    assert line.startswith("RESULT responses turns=6 ") and "same_output=2/2" in line and "backend=scripted" in line
