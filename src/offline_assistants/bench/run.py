"""`offline-assistants bench`: the truncation, throughput and time-to-first-token measurements on this machine and
model, each next to its baseline from the same run, in one table (or JSON). It runs the same code as the
scripts in benchmarks/, with shorter defaults; progress goes to stderr as they run."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable
from typing import Any

# (measurement, benchmark, ours key, baseline key, ratio key, unit, what the baseline is)
ROWS = [
    ("choose the window of a 10k-message thread", "truncation", "ours_ms", "baseline_ms", "ratio", "ms",
     "re-tokenize the whole thread"),
    ("generate", "throughput", "ours_tok_s", "raw_tok_s", "ratio", "tok/s", "raw llama-cpp-python"),
    ("read the prompt", "throughput", "ours_prompt_tok_s", "raw_prompt_tok_s", "prompt_ratio", "tok/s",
     "raw llama-cpp-python"),
    ("first token, follow-up turn", "ttft", "followup_s", "cold_s", "ratio", "s", "the same thread, cold"),
]
QUICK = {
    "truncation": ["--sizes", "1000,10000", "--reps", "100", "--baseline-reps", "3,1", "--newest-reps", "5",
                   "--tail-add", "200", "--quiet-wait", "5"],
    "throughput": ["--reps", "3", "--max-tokens", "100", "--quiet-wait", "5"],
    "ttft": ["--cold", "2", "--followups", "3", "--switches", "2", "--quiet-wait", "5"],
}


def _result(main: Callable[[list[str]], int], argv: list[str]) -> dict[str, str]:
    """Run one benchmark's main and read its RESULT line (its stdout is that one line)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"benchmark exited with {code}")
    line = next((x for x in out.getvalue().splitlines() if x.startswith("RESULT ")), "")
    return dict(part.split("=", 1) for part in line.split()[2:] if "=" in part)


def bench(*, model: str | None, threads: int | None, only: list[str], as_json: bool) -> int:
    from offline_assistants.bench import throughput, truncation, ttft

    mains: dict[str, Callable[[list[str]], int]] = {"truncation": truncation.main, "throughput": throughput.main,
                                                    "ttft": ttft.main}
    results: dict[str, dict[str, str]] = {}
    for name in only:
        argv = list(QUICK[name])
        if name != "truncation":  # truncation measures the store and the tokenizer, not the model's speed
            argv += (["--model", model] if model else []) + (["--threads", str(threads)] if threads else [])
        print(f"== {name} ==", file=sys.stderr, flush=True)
        results[name] = _result(mains[name], argv)
    rows: list[dict[str, Any]] = []
    for label, name, ours, base, ratio, unit, baseline in ROWS:
        if name in results:
            r = results[name]
            rows.append({"measurement": label, "benchmark": name, "ours": r.get(ours), "baseline": r.get(base),
                         "ratio": r.get(ratio), "unit": unit, "baseline_is": baseline})
    if as_json:
        print(json.dumps({"rows": rows, "results": results}, indent=2))
        return 0
    widths = [44, 12, 12, 10]
    print(f"{'measurement':<{widths[0]}} {'ours':>{widths[1]}} {'baseline':>{widths[2]}} {'ratio':>{widths[3]}}  "
          "baseline is")
    for row in rows:
        print(f"{row['measurement'] + ' (' + row['unit'] + ')':<{widths[0]}} {row['ours'] or '-':>{widths[1]}} "
              f"{row['baseline'] or '-':>{widths[2]}} {row['ratio'] or '-':>{widths[3]}}  {row['baseline_is']}")
    return 0
