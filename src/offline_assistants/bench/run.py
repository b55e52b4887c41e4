"""`offline-assistants bench`: the truncation, throughput and time-to-first-token measurements on this machine and
model, each next to its baseline from the same run, in one table (or JSON). It calls the same measure() functions
as the scripts in benchmarks/, with shorter runs; progress goes to stderr as they run."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass

from offline_assistants.bench import throughput, truncation, ttft
from offline_assistants.bench.common import ModelSetup, fmt
from offline_assistants.bench.throughput import ThroughputOptions, ThroughputResult
from offline_assistants.bench.truncation import TruncationOptions, TruncationResult
from offline_assistants.bench.ttft import TtftOptions, TtftResult

Options = TruncationOptions | ThroughputOptions | TtftOptions
Result = TruncationResult | ThroughputResult | TtftResult

_QUICK_MODEL = ModelSetup(quiet_wait=5)
QUICK: dict[str, Options] = {  # the measurements `bench` runs, by name, with its shorter runs
    "truncation": TruncationOptions(sizes=(1000, 10_000), reps=100, baseline_reps=(3, 1), newest_reps=5,
                                    tail_add=200, quiet_wait=5),
    "throughput": ThroughputOptions(reps=3, max_tokens=100, model=_QUICK_MODEL),
    "ttft": TtftOptions(cold=2, followups=3, switches=2, model=_QUICK_MODEL),
}


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure of ours next to its baseline from the same run."""

    measurement: str
    benchmark: str
    ours: float
    baseline: float
    ratio: float
    unit: str
    baseline_is: str


def measure(options: Options) -> Result:
    match options:
        case TruncationOptions():
            return truncation.measure(options)
        case ThroughputOptions():
            return throughput.measure(options)
        case TtftOptions():
            return ttft.measure(options)


def rows(name: str, result: Result) -> list[Row]:
    match result:
        case TruncationResult():
            n = f"{result.messages // 1000}k" if result.messages % 1000 == 0 else str(result.messages)
            return [Row(f"choose the window of a {n}-message thread", name, result.ours_ms,
                        result.baseline_ms, result.ratio, "ms", "re-tokenize the whole thread")]
        case ThroughputResult():
            return [Row("generate", name, result.ours_tok_s, result.raw_tok_s, result.ratio, "tok/s",
                        "raw llama-cpp-python"),
                    Row("read the prompt", name, result.ours_prompt_tok_s, result.raw_prompt_tok_s,
                        result.prompt_ratio, "tok/s", "raw llama-cpp-python")]
        case TtftResult():
            return [Row("first token, follow-up turn", name, result.followup_s, result.cold_s, result.ratio, "s",
                        "the same thread, cold")]


def _with_model(options: Options, model: str | None, threads: int | None) -> Options:
    match options:
        case TruncationOptions():  # it measures the store and the tokenizer, not the model's speed
            return options
        case ThroughputOptions() | TtftOptions():
            setup = dataclasses.replace(options.model, model=model or options.model.model,
                                        threads=threads or options.model.threads)
            return dataclasses.replace(options, model=setup)


def bench(*, model: str | None, threads: int | None, only: list[str], as_json: bool) -> int:
    results: dict[str, Result] = {}
    for name in only:
        print(f"== {name} ==", file=sys.stderr, flush=True)
        results[name] = measure(_with_model(QUICK[name], model, threads))
    table = [row for name, result in results.items() for row in rows(name, result)]
    if as_json:
        print(json.dumps({"rows": [dataclasses.asdict(row) for row in table],
                          "results": {name: dataclasses.asdict(result) for name, result in results.items()}},
                         indent=2))
        return 0
    widths = [44, 12, 12, 10]
    print(f"{'measurement':<{widths[0]}} {'ours':>{widths[1]}} {'baseline':>{widths[2]}} {'ratio':>{widths[3]}}  "
          "baseline is")
    for row in table:
        print(f"{row.measurement + ' (' + row.unit + ')':<{widths[0]}} {fmt(row.ours):>{widths[1]}} "
              f"{fmt(row.baseline):>{widths[2]}} {fmt(row.ratio):>{widths[3]}}  {row.baseline_is}")
    return 0
