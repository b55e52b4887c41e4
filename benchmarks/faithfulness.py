"""Do replies state the tool's result? Questions whose answer is a tool's output, through the official `openai` SDK.

Data: benchmarks/data/faithfulness.jsonl, 42 items of our own in three kinds of 14:

  code      the seed's math tutor (instructions "You are a personal math tutor. Write and run code to answer math
            questions.", the code_interpreter tool): products, sums, percentages, equations. The result is what
            the kernel printed: the last number in the code step's logs (no number, or a traceback: the item is
            not measured, and counted as such).
  function  an assistant with one function (its spec in the item); the client submits the item's `output` (`17`,
            `Cloudy, 14 C`, `{"price": 182.31}`, ...) with submit_tool_outputs; the result is the item's `expect`.
  file      a small text file holding a figure, uploaded into a vector store of its own that the assistant's
            file_search reads; the result is the item's `expect` (the figure as the file writes it). An item whose
            search returned no passage holding it is not measured.

Every run is made with `tool_choice` that makes the call (code and file search "required", the function by
name), so what is measured is the reply written after the tool's output, not the decision to call. Runs use the
server's sampling defaults (no temperature or top_p sent, what a new user gets) and max_completion_tokens
--max-tokens for the whole run (code included).

Scoring, fixed before anything was measured:
  exact     the reply states the result exactly: the figure's digits as the tool gave them, as a number of their
            own (no digit, and no "." or "," followed by a digit, directly before or after). Allowed, harmless:
            thousands separators on either side ("7,006,652" for "7006652", "1450" for "1,450"; a comma or a thin
            or narrow no-break space between a digit and exactly three digits). Not allowed: rounding, another
            number of decimals ("1" for "1.0"), a different decimal mark.
  call      the reply holds a tool call written as text: a `<tool_call>` / `<tool_response>` / `<tools>` tag (open
            or close), or a JSON object whose first keys are "name" and "arguments" (or "parameters"). Must be 0.

Halves: items whose number is odd are the "tune" half, even ones the "held" half. Anything fitted (bias strengths,
wording) is chosen on the tune half only; both halves are reported.

Mechanisms (docs/models.md, "Answers true to the tool's output"): the answer's model call carries an answer bias
(llm/answer_bias.py) that copies the figures of the tool outputs whole and keeps the answer from opening as a
call, and a model without a tool syntax of its own reads a cue after each result (llm/template.py ANSWER_CUE).
--without copy / --without openings serves the model with one half of the bias taken out (the sampling the
backend gets loses that field), --without bias without any (the backend's `steers_answers` switched off, as a
backend without the capability). What the cue buys is measured by running this script on the tree before it.

measure() returns a FaithfulnessResult; the script prints its line: RESULT faithfulness items=.. measured=..
exact=.. exact_code=.. exact_function=.. exact_file=.. exact_tune=.. exact_held=.. call_as_text=.. ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_assistants.bench.common import ModelSetup, add_model_options, log, machine, open_bench_backend
from offline_assistants.bench.measure import result_value as r3

DATA = Path(__file__).resolve().parent / "data" / "faithfulness.jsonl"
KINDS = ("code", "function", "file")
HALVES = ("tune", "held")
TUTOR = "You are a personal math tutor. Write and run code to answer math questions."
HELPFUL = "You are a helpful assistant."

# --- scoring (see the docstring: defined before measuring) -----------------------------------------------------

_SEPARATOR = re.compile(r"(?<=\d)[,\u2009\u202f](?=\d{3}(?!\d))")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CALL_TEXT = re.compile(r"</?tool_call>|</?tool_response>|</?tools>"
                        r"|\{\s*\"name\"\s*:\s*\"[^\"]*\"\s*,\s*\"(?:arguments|parameters)\"\s*:")


def plain(text: str) -> str:
    """Thousands separators taken out."""
    return _SEPARATOR.sub("", text)


def states(reply: str, figure: str) -> bool:
    """The reply states `figure` exactly, as a number of its own."""
    pattern = rf"(?<![\d.,]){re.escape(plain(figure))}(?!\d|[.,]\d)"
    return re.search(pattern, plain(reply)) is not None


def call_as_text(reply: str) -> bool:
    return _CALL_TEXT.search(reply) is not None


def printed_figure(logs: str) -> str | None:
    """The result a code step gave: the last number it printed (None: it failed, or printed no number)."""
    if not logs or "Traceback" in logs or "Error" in logs:
        return None
    numbers = _NUMBER.findall(plain(logs))
    return numbers[-1] if numbers else None


def half_of(item: dict[str, Any]) -> str:
    return HALVES[(int(item["id"].rsplit("-", 1)[1]) + 1) % 2]


def self_check() -> None:
    assert states("The answer is 7,006,652.", "7006652") and states("= 7006652", "7006652")
    assert not states("# Output: 70066.52", "7006652") and not states("70066520", "7006652")
    assert states("The rent is 1450 euros", "1,450") and states("It is 1,450 euros.", "1,450")
    assert not states("x = 1.0", "1") and not states("1.5", "1") and states("so x = 1.", "1")
    assert not states("4.25 million", "4.2") and states("(4.2 million)", "4.2") and not states("v14.2", "4.2")
    assert call_as_text('<tool_call>\n{"name": "f", "arguments": {}}') and call_as_text("</tool_response> 17")
    assert call_as_text('```json\n{"name": "python", "arguments": {"code": "1234 * 5678"}}\n```')
    assert not call_as_text('The price is {"price": 182.31} dollars') and not call_as_text("It is 17 C.")
    assert printed_figure("7006652\n") == "7006652" and printed_figure("x = [1]\n") == "1"
    assert printed_figure("Traceback ...\nNameError: x") is None and printed_figure("done\n") is None


# --- one item --------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    figure: str | None  # the tool's result (None: the tool gave none, the item is not measured)
    reply: str
    status: str
    tool_input: str  # the code or the arguments the model wrote, or the search query
    tool_output: str  # what the tool gave (logs, the submitted output, the passages)


def _reply(client: Any, thread_id: str, run_id: str) -> str:
    return "".join(p.text.value for m in client.beta.threads.messages.list(thread_id=thread_id, run_id=run_id,
                                                                            order="asc")
                   for p in m.content if p.type == "text")


def _steps(client: Any, thread_id: str, run_id: str, include: list[str] | None = None) -> list[Any]:
    kw = {"include": include} if include else {}
    return [s for s in client.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run_id, order="asc",
                                                           limit=100, **kw)
            if s.step_details.type == "tool_calls"]


def run_code(client: Any, item: dict[str, Any], assistant_id: str, args: argparse.Namespace) -> Outcome:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": item["request"]}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id,
                                                   tool_choice="required", max_completion_tokens=args.max_tokens,
                                                   poll_interval_ms=args.poll_ms)
    code = logs = ""
    for step in _steps(client, thread.id, run.id):
        for call in step.step_details.tool_calls:
            if call.type == "code_interpreter":
                code = call.code_interpreter.input
                logs = "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs")
                break
        if code:
            break
    outcome = Outcome(printed_figure(logs), _reply(client, thread.id, run.id), run.status, code, logs)
    client.beta.threads.delete(thread.id)  # stops its kernel
    return outcome


def run_function(client: Any, item: dict[str, Any], assistant_id: str, args: argparse.Namespace) -> Outcome:
    name = item["function"]["function"]["name"]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": item["request"]}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, max_completion_tokens=args.max_tokens,
        tool_choice={"type": "function", "function": {"name": name}}, poll_interval_ms=args.poll_ms)
    arguments = []
    for _ in range(2):  # a second round of calls gets the same output; a third is cancelled below
        if run.status != "requires_action":
            break
        calls = run.required_action.submit_tool_outputs.tool_calls
        arguments += [c.function.arguments for c in calls]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread.id, run_id=run.id, poll_interval_ms=args.poll_ms,
            tool_outputs=[{"tool_call_id": c.id, "output": item["output"]} for c in calls])
    if run.status == "requires_action":
        client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
        run = client.beta.threads.runs.poll(thread_id=thread.id, run_id=run.id, poll_interval_ms=args.poll_ms)
    outcome = Outcome(item["expect"] if arguments else None, _reply(client, thread.id, run.id), run.status,
                      "; ".join(arguments), item["output"])
    client.beta.threads.delete(thread.id)
    return outcome


def run_file(client: Any, item: dict[str, Any], args: argparse.Namespace) -> Outcome:
    upload = client.files.create(file=(item["file"]["name"], item["file"]["text"].encode()), purpose="assistants")
    store = client.vector_stores.create(name=item["id"], file_ids=[upload.id])
    for _ in range(600):  # indexing runs on a background thread
        store = client.vector_stores.retrieve(store.id)
        if store.file_counts.in_progress == 0:
            break
        time.sleep(0.05)
    assistant = client.beta.assistants.create(model="gpt-4o", instructions=HELPFUL, tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": item["request"]}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   tool_choice="required", max_completion_tokens=args.max_tokens,
                                                   poll_interval_ms=args.poll_ms)
    query = passages = ""
    include = ["step_details.tool_calls[*].file_search.results[*].content"]
    for step in _steps(client, thread.id, run.id, include):
        for call in step.step_details.tool_calls:
            if call.type == "file_search":
                query = (call.file_search.model_extra or {}).get("x_query", "")
                passages += "\n".join(c.text for r in call.file_search.results or [] for c in r.content or [])
    found = states(passages, item["expect"])
    outcome = Outcome(item["expect"] if found else None, _reply(client, thread.id, run.id), run.status, query,
                      passages)
    client.beta.threads.delete(thread.id)
    client.beta.assistants.delete(assistant.id)
    client.vector_stores.delete(store.id)
    client.files.delete(upload.id)
    return outcome


# --- the result ------------------------------------------------------------------------------------------------

def _share(rows: list[dict[str, Any]]) -> float | None:
    measured = [r for r in rows if r["figure"] is not None]
    return sum(r["exact"] for r in measured) / len(measured) if measured else None


@dataclass(frozen=True)
class FaithfulnessResult:
    """Shares over the measured items (those whose tool gave a result); None: no such item ran."""

    items: int
    measured: int
    exact: float | None
    by_kind: dict[str, float | None]
    by_half: dict[str, float | None]
    call_as_text: int  # replies holding a tool call written as text (over all items, measured or not)
    code_replies: int  # replies that open with a code fence (the code again, not an answer; not scored)
    not_completed: int  # runs that did not end `completed`
    without: str  # the mechanisms taken out for this run ("-": none)
    model: str
    wall_s: float

    def line(self) -> str:
        kinds = " ".join(f"exact_{k}={r3(v)}" for k, v in self.by_kind.items())
        halves = " ".join(f"exact_{h}={r3(v)}" for h, v in self.by_half.items())
        return (f"RESULT faithfulness items={self.items} measured={self.measured} exact={r3(self.exact)} {kinds} "
                f"{halves} call_as_text={self.call_as_text} code_replies={self.code_replies} "
                f"not_completed={self.not_completed} without={self.without} "
                f"model={self.model} wall_s={self.wall_s:.0f}")


def summarize(rows: list[dict[str, Any]], without: str, model: str, wall: float) -> FaithfulnessResult:
    return FaithfulnessResult(
        items=len(rows), measured=sum(r["figure"] is not None for r in rows), exact=_share(rows),
        by_kind={k: _share([r for r in rows if r["kind"] == k]) for k in KINDS if any(r["kind"] == k for r in rows)},
        by_half={h: _share([r for r in rows if r["half"] == h]) for h in HALVES},
        call_as_text=sum(r["call_as_text"] for r in rows),
        code_replies=sum(r["reply"].lstrip().startswith("```") for r in rows),
        not_completed=sum(r["status"] != "completed" for r in rows), without=without, model=model, wall_s=wall)


# --- main ------------------------------------------------------------------------------------------------------

def select(items: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for kind in args.kind or KINDS:
        of_kind = [i for i in items if i["kind"] == kind and (args.half == "all" or half_of(i) == args.half)]
        kept += of_kind[: args.limit]
    return kept


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[tuple[Any, str]]:
    """The model opened as `serve` opens it, a server built on it as `serve` builds one, the SDK on loopback."""
    import openai

    from offline_assistants.config import Settings
    from offline_assistants.launch import build
    from offline_assistants.testing import serve

    backend = open_bench_backend(ModelSetup.from_args(args))
    if "bias" in args.without:
        backend.steers_answers = False  # as a backend without the capability: the engine gives it no bias
    elif args.without:
        _take_out(backend, {"copy": "copy_from", "openings": "never_open"}, args.without)
    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-faithful-"))
    built = build(Settings(data_dir=data_dir, n_ctx=args.n_ctx), backend=backend)
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per poll otherwise
    try:
        with serve(built.app()) as url:
            yield openai.OpenAI(base_url=url, api_key="local", max_retries=0), backend.name
    finally:
        built.close()
        backend.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _take_out(backend: Any, fields: dict[str, str], without: list[str]) -> None:
    """The backend's generate, given answer biases without the named fields."""
    import dataclasses

    original = backend.generate
    empty = {fields[name]: () for name in without}

    def generate(prompt: list[int], sampling: Any, **kw: Any) -> Any:
        if sampling.answer is not None:
            sampling = dataclasses.replace(sampling, answer=dataclasses.replace(sampling.answer, **empty))
        return original(prompt, sampling, **kw)

    backend.generate = generate


def measure(args: argparse.Namespace) -> FaithfulnessResult:
    items = select([json.loads(line) for line in args.data.read_text().splitlines() if line.strip()], args)
    if not items:
        raise SystemExit("no items selected")
    log("machine:", json.dumps(machine()))
    log(f"{len(items)} items: " + ", ".join(f"{k} {sum(i['kind'] == k for i in items)}" for k in KINDS))
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    out = args.out.open("w") if args.out else None
    with server(args) as (client, model):
        tutor = client.beta.assistants.create(model="gpt-4o", instructions=TUTOR,
                                              tools=[{"type": "code_interpreter"}]).id
        for n, item in enumerate(items, 1):
            t0 = time.perf_counter()
            if item["kind"] == "code":
                got = run_code(client, item, tutor, args)
            elif item["kind"] == "function":
                assistant = client.beta.assistants.create(model="gpt-4o", instructions=HELPFUL,
                                                          tools=[item["function"]]).id
                got = run_function(client, item, assistant, args)
                client.beta.assistants.delete(assistant)
            else:
                got = run_file(client, item, args)
            row = {"id": item["id"], "kind": item["kind"], "half": half_of(item), "request": item["request"],
                   **got.__dict__, "exact": got.figure is not None and states(got.reply, got.figure),
                   "call_as_text": call_as_text(got.reply), "wall_s": time.perf_counter() - t0}
            rows.append(row)
            if out is not None:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
            verdict = ("not measured" if got.figure is None else "EXACT" if row["exact"] else "MISSED")
            log(f"[{n}/{len(items)}] {item['id']} ({row['half']}): result {got.figure!r} {verdict}"
                f"{' CALL-AS-TEXT' if row['call_as_text'] else ''} | {got.status} | reply {got.reply[:90]!r} | "
                f"tool {got.tool_input[:50]!r} -> {got.tool_output[:40]!r} | {row['wall_s']:.1f}s")
    if out is not None:
        out.close()
    result = summarize(rows, ",".join(args.without) or "-", model, time.monotonic() - started)
    missed = [r["id"] for r in rows if r["figure"] is not None and not r["exact"]]
    log(f"missed: {', '.join(missed) or '-'}; not measured: "
        f"{', '.join(r['id'] for r in rows if r['figure'] is None) or '-'}; "
        f"call as text: {', '.join(r['id'] for r in rows if r['call_as_text']) or '-'}")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="items (default %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N items of each kind")
    ap.add_argument("--kind", choices=KINDS, action="append", help="only this kind (may be repeated)")
    ap.add_argument("--half", choices=[*HALVES, "all"], default="all", help="only one half (default all)")
    ap.add_argument("--max-tokens", type=int, default=160,
                    help="max_completion_tokens of each run, tool calls included (default %(default)s)")
    ap.add_argument("--without", choices=["copy", "openings", "bias"], action="append", default=[],
                    help="take a mechanism out, to measure what it buys (may be repeated; see above)")
    ap.add_argument("--poll-ms", type=int, default=50, help="the SDK's poll interval (default %(default)s)")
    ap.add_argument("--out", type=Path, default=None, help="write per-item results here (JSONL, replies included)")
    ap.add_argument("--self-check", action="store_true", help="only check the scoring on fixed strings")
    add_model_options(ap, unit="item")
    ap.set_defaults(quiet_wait=0.0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated
    self_check()
    if args.self_check:
        return 0
    result = measure(args)
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
