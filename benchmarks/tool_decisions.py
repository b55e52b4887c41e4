"""How the server's model decides under `tool_choice: "auto"`: call a function, run code, or answer.

Data (--set; benchmarks/tool_data.py loads them):

  ours          benchmarks/data/tool_decisions.jsonl, a labelled set of our own (167 items), over the ~20 function
                tools of benchmarks/data/tool_catalogue.json (OpenAI function specs); engine/decision.py's
                constants were first fitted on it
  bfcl-tune     half of a set selected by a fixed rule from the Berkeley Function Calling Leaderboard's data (the
                `bfcl-eval` wheel: `pip download --no-deps bfcl-eval==2026.3.23 -d ~/.cache/offline-assistants`):
                relevant requests with one function and BFCL's possible answers, and irrelevant requests whose
                offered functions share a content word with the request. What is fitted may be fitted on this half
  bfcl-heldout  the other half: reported, never fitted on

Each item offers a few tools (the name "code_interpreter" adds {"type": "code_interpreter"}), one user request,
and what the right move is: {"answer": true}, {"calls": [{"name", "arguments"}]} or {"code": true}. Our categories:

  single     exactly one of the 2-4 offered tools fits (a few items offer code_interpreter too)
  none       no offered tool fits: chit-chat, general knowledge, writing; some near misses (a weather tool offered
             and "what does fahrenheit mean?" asked)
  parallel   two calls are needed: the same tool twice (two cities) or two tools
  code       code_interpreter is offered (with 0-3 functions) and computing is the right move
  code_none  code_interpreter is offered but the request is plain conversation
BFCL's: relevant (a call is right), irrelevant (answering is right).

Method: the model is loaded as `serve` loads it (--model, --backend, --cpu-repack), an Engine is built on it with
a Jupyter code runner as cli.py builds one, and everything goes through the official `openai` SDK: on uvicorn on
loopback (offline_assistants.testing.serve, --client loopback, the default) or on testing.in_process_client
(--client in-process; it leaks 2 fds per request, a new anyio worker thread and its SQLite connection each
time: a 40-item run once died at the 20,000-fd limit). One assistant per distinct tool set (default
instructions, no temperature: the server's defaults are what is measured); per item a new thread with the
request, then `runs.create_and_poll(tool_choice="auto", max_completion_tokens=--max-tokens)`. Outcome:

  call    the run stopped in requires_action (names and JSON arguments from required_action), or a function step
          was opened and cut short by max_completion_tokens (counted as a call with unusable arguments)
  code    the first tool_calls step holds a code_interpreter call
  answer  neither

A parallel item whose first requires_action holds fewer calls than expected is followed up (unless
--no-follow-up): stub outputs ({"ok": true}) are submitted and further calls collected, up to as many rounds as
expected calls. A run still in requires_action is then cancelled, and the thread deleted (which also stops its
Jupyter kernel).

Metrics, overall and per category:
  decision     the kind of move is right (call / code / answer)
  right_tool   items expecting calls: the set of called names equals the expected set (parallel: over all rounds)
  arg_match    single-call items where the right tool was called: the arguments are right. Ours: every expected
               argument matches (arguments the request leaves open are not in the data and not scored; strings
               case-insensitively, trimmed; numbers numerically; location-like keys accept a longer value that
               starts with the expected one, "San Francisco, CA" for "San Francisco"). BFCL: its possible answers
               (each argument given is listed, with an acceptable value; every argument not marked optional is
               given; strings compared without case, spaces and punctuation)
  args_exact   the same over every single-call item with expected arguments: a missed or wrong call counts wrong
  abstain_irrelevant  items where answering is right (none, code_none, irrelevant) that got an answer
  abstain      items expecting a function call that got an answer; code_abstain: code items that got one
  false_call   none / code_none items that got a call or code
  parallel     both expected calls present in the first requires_action (one_turn, what OpenAI's parallel tool
               calls give), and over all followed-up rounds (both); *_args: with matching arguments too
  latency      wall time of create_and_poll (median, p90): includes writing the answer (up to --max-tokens) or
               running the code; decision_s is the time to the end of the first model call (the decision itself)
  prompt       prompt tokens of the first model call (tool descriptions included), against the same request's
               prompt without tools (default system prompt + user message + generation prefix, counted with the
               model's tokenizer and checked by a warm-up run without tools); evaluated = what llama.cpp actually
               evaluated after the KV-cache prefix reuse (Finish.prompt_tokens, from a wrapper on the backend)

The tool decision is scored, not sampled (engine/decision.py), so decisions repeat from run to run. Arguments,
code and answers are sampled at the server's default temperature for the model (SmolLM2: 0.2) from a fixed seed,
so they depend on the order the items run in: arg_match, args_exact and the cut counts may move a little when the
items change; decision, right_tool, abstain and false_call do not.

The machine may be shared: other processes' CPU use (machine busy time minus this process and its children: the
model process, the kernels) is measured during each item and logged. Items with --busy cores or more are kept
(decisions do not depend on load) but left out of the latency figures, unless every item was loaded (then all
count, and loaded=N in the RESULT line says so). The script waits up to --quiet-wait seconds for quiet once,
before the first item (waiting before every one would double a run on a busy machine, for secondary figures).

--slice runs only the items in SLICE (below): a small set the default model gets right (decision and tool),
meant for a regression test.

report() returns a ToolDecisionsResult; the script prints its line: RESULT tool_decisions set=.. items=..
decision=.. right_tool=.. arg_match=.. ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tool_data as data

from offline_assistants.bench.common import ModelSetup, add_model_options, log, machine, open_bench_backend
from offline_assistants.bench.measure import OtherLoad, median, percentile, wait_quiet
from offline_assistants.bench.measure import result_value as r3

STUB_OUTPUT = '{"ok": true}'

# Items of ours the default model (SmolLM2-135M-Instruct) decides right, with the right tool, in every run that
# included them: 3 single calls, the first call of a parallel item, 2 code, 2 answers (one a near miss). A
# regression test on this slice should check the decision and the tool names, not the sampled arguments.
SLICE = ["single-06", "single-14", "single-33", "parallel-18", "code-02", "code-09", "none-07", "code_none-07"]


@dataclass(frozen=True)
class ToolDecisionsResult:
    """Rates are shares of the items they apply to (None: no such item ran); latencies over the items run while
    other processes stayed under --busy cores (all of them when none did)."""

    set: str
    items: int
    decision: float | None  # the right kind of move (call, code, answer)
    right_tool: float | None
    arg_match: float | None
    args_exact: float | None  # right call with right arguments, over every single-call item with arguments
    abstain_irrelevant: float | None  # answered where answering is right
    abstain: float | None  # answered where a call was needed
    code_abstain: float | None
    false_call: float | None
    parallel_one_turn: float | None
    parallel_both: float | None
    parallel_both_args: float | None
    decision_by_category: dict[str, float | None]
    latency_p50_s: float
    latency_p90_s: float
    decision_p50_s: float
    prompt_tokens_tools: float  # the first model call's prompt with the tools offered
    prompt_tokens_plain: float  # the same request without tools
    evaluated_first_call: float
    cut: int  # calls cut by max tokens
    failed: int
    loaded: int  # items run while other processes used --busy cores or more
    plain_prompt_check: bool  # the no-tools prompt count formula matched the warm-up run
    max_tokens: int
    model: str
    backend: str
    wall_s: float

    def line(self) -> str:
        per_cat = " ".join(f"decision_{c}={r3(v)}" for c, v in self.decision_by_category.items())
        return (f"RESULT tool_decisions set={self.set} items={self.items} decision={r3(self.decision)} "
                f"right_tool={r3(self.right_tool)} arg_match={r3(self.arg_match)} args_exact={r3(self.args_exact)} "
                f"abstain_irrelevant={r3(self.abstain_irrelevant)} abstain={r3(self.abstain)} "
                f"code_abstain={r3(self.code_abstain)} false_call={r3(self.false_call)} "
                f"parallel_one_turn={r3(self.parallel_one_turn)} parallel_both={r3(self.parallel_both)} "
                f"parallel_both_args={r3(self.parallel_both_args)} {per_cat} "
                f"latency_p50_s={self.latency_p50_s:.2f} latency_p90_s={self.latency_p90_s:.2f} "
                f"decision_p50_s={self.decision_p50_s:.2f} prompt_tokens_tools={self.prompt_tokens_tools:.0f} "
                f"prompt_tokens_plain={self.prompt_tokens_plain:.0f} "
                f"evaluated_first_call={self.evaluated_first_call:.0f} cut={self.cut} failed={self.failed} "
                f"loaded={self.loaded} plain_prompt_check={'ok' if self.plain_prompt_check else 'DIFFERENT'} "
                f"max_tokens={self.max_tokens} model={self.model} backend={self.backend} wall_s={self.wall_s:.0f}")


# --- one item ---------------------------------------------------------------------------------------------------

def _constraint_kind(constraint: Any) -> str:
    from offline_assistants.llm.backend import Choice, CodeBlock

    if constraint is None:
        return "message"
    if isinstance(constraint, CodeBlock):
        return "code"
    if isinstance(constraint, Choice):
        return "decision"
    return "arguments"


def run_item(client: Any, item: dict[str, Any], assistant_id: str, model_calls: list[dict[str, Any]],
             args: argparse.Namespace) -> dict[str, Any]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": item["request"]}])
    model_calls.clear()
    t0 = time.perf_counter()
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, tool_choice="auto",
        max_completion_tokens=args.max_tokens, poll_interval_ms=args.poll_ms)
    latency = time.perf_counter() - t0
    decision_s = (model_calls[0]["t_end"] - t0) if model_calls and "t_end" in model_calls[0] else None
    first_call = dict(model_calls[0]) if model_calls else None

    def read_calls(r: Any) -> list[dict[str, Any]]:
        return [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments,
                 "args": data.parse_args_json(c.function.arguments)}
                for c in r.required_action.submit_tool_outputs.tool_calls]

    calls_first: list[dict[str, Any]] = read_calls(run) if run.status == "requires_action" else []
    calls = list(calls_first)
    rounds = 1 if calls_first else 0
    want = len(item["expect"].get("calls") or [])
    while (run.status == "requires_action" and args.follow_up and want > 1 and len(calls) < want
           and rounds < want):
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread.id, run_id=run.id, poll_interval_ms=args.poll_ms,
            tool_outputs=[{"tool_call_id": c.id, "output": STUB_OUTPUT}
                          for c in run.required_action.submit_tool_outputs.tool_calls])
        if run.status == "requires_action":
            calls += read_calls(run)
            rounds += 1
    status_at_end = run.status
    if run.status == "requires_action":
        client.beta.threads.runs.cancel(thread_id=thread.id, run_id=run.id)
        run = client.beta.threads.runs.poll(thread_id=thread.id, run_id=run.id, poll_interval_ms=args.poll_ms)

    steps = list(client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc", limit=100))
    first_tool = next((s for s in steps if s.step_details.type == "tool_calls" and s.step_details.tool_calls), None)
    code_input = None
    cut = False
    if first_tool is not None and first_tool.step_details.tool_calls[0].type == "code_interpreter":
        outcome = "code"
        code_input = first_tool.step_details.tool_calls[0].code_interpreter.input
    elif calls_first:
        outcome = "call"
    elif first_tool is not None and first_tool.step_details.tool_calls[0].type == "function":
        outcome, cut = "call", True  # a function step cut short by max_completion_tokens before requires_action
        fn = first_tool.step_details.tool_calls[0].function
        written = fn.arguments or next((c["text"] for c in model_calls if c["kind"] == "arguments"), "")
        calls_first = [{"id": first_tool.step_details.tool_calls[0].id, "name": fn.name,
                        "arguments": written, "args": data.parse_args_json(fn.arguments)}]
        calls = list(calls_first)
    elif run.status == "failed":
        outcome = "error"
    else:
        outcome = "answer"
    if outcome == "code" and not code_input:
        # The step's input is written when the code is complete; cut by max_completion_tokens it stays empty.
        code_input = next((c["text"] for c in model_calls if c["kind"] == "code"), "")
    if outcome == "code":
        cut = first_tool is not None and first_tool.status == "cancelled" and run.status == "incomplete"
    answer = ""
    for m in client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id, order="asc"):
        answer += "".join(p.text.value for p in m.content if p.type == "text")
    usage = run.usage
    client.beta.threads.delete(thread.id)
    return {
        "outcome": outcome, "calls": [{k: c[k] for k in ("name", "arguments", "args")} for c in calls],
        "calls_first_turn": [{k: c[k] for k in ("name", "arguments", "args")} for c in calls_first],
        "rounds": rounds, "cut": cut, "status": status_at_end, "final_status": run.status,
        "last_error": run.last_error.message if run.last_error else None,
        "code": code_input, "answer": answer, "latency_s": latency, "decision_s": decision_s,
        "decision_text": first_call["text"] if first_call and first_call["kind"] == "decision" else None,
        "first_call_kind": first_call["kind"] if first_call else None,
        "prompt_tokens_first_call": first_call["prompt"] if first_call else None,
        "evaluated_first_call": first_call.get("evaluated") if first_call else None,
        "run_prompt_tokens": usage.prompt_tokens if usage else None,
        "run_completion_tokens": usage.completion_tokens if usage else None,
        "model_calls": [{k: c.get(k) for k in ("kind", "prompt", "evaluated", "completion", "text")}
                        for c in model_calls],
    }


def run_all(args: argparse.Namespace, items: list[dict[str, Any]], client: Any, backend: Any,
            model_calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The warm-up, then every item in order; returns the per-item rows and whether the no-tools prompt count
    formula matched the warm-up run."""
    from offline_assistants.engine.executor import DEFAULT_SYSTEM

    def plain_prompt(text: str) -> int:
        return len(backend.encode_system(DEFAULT_SYSTEM)) + len(backend.encode_message("user", text)) + \
            len(backend.generation_prefix())

    # Warm-up (not measured), and a check of the no-tools prompt count: a run without tools makes one model call.
    warm_text = "Hello! Say hi back in one short sentence."
    plain = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": warm_text}])
    model_calls.clear()
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=plain.id, max_completion_tokens=16,
                                             poll_interval_ms=args.poll_ms)
    client.beta.threads.delete(thread.id)
    plain_ok = len(model_calls) == 1 and model_calls[0]["prompt"] == plain_prompt(warm_text)
    log(f"warm-up without tools: prompt {model_calls[0]['prompt'] if model_calls else '?'} tokens, formula "
        f"{plain_prompt(warm_text)} -> {'same' if plain_ok else 'DIFFERENT'}")

    assistants: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    out = None
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        out = open(args.out, "w")  # noqa: SIM115 - written item by item, so a crash keeps what was measured
    # The model process and the kernels are this process's children: OtherLoad counts them as ours.
    wait_quiet(args.quiet_wait, args.busy, "first item")
    for n, item in enumerate(items, 1):
        key = json.dumps(item["specs"], sort_keys=True)
        if key not in assistants:
            assistants[key] = client.beta.assistants.create(model="gpt-4o", tools=item["specs"]).id
        meter = OtherLoad().start()
        res = run_item(client, item, assistants[key], model_calls, args)
        res["others"] = meter.stop()
        res["prompt_tokens_plain"] = plain_prompt(item["request"])
        res["open_fds"] = len(os.listdir("/proc/self/fd"))
        row = {"id": item["id"], "category": item["category"], "tools": item["tools"], "request": item["request"],
               "expect": item["expect"], **res}
        row["score"] = data.score(item, res)
        rows.append(row)
        if out is not None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
        sc = row["score"]
        shown = "; ".join(f"{c['name']}({c['arguments']})" for c in res["calls"]) if res["calls"] else ""
        what = {"call": shown + (" [cut by max tokens]" if res["cut"] else ""),
                "code": repr((res["code"] or "")[:60]) + (" [cut by max tokens]" if res["cut"] else ""),
                "answer": repr(res["answer"][:60]),
                "error": res["last_error"]}[res["outcome"]]
        flags = " ".join(f"{k}={'Y' if v else 'n'}" for k, v in sc.items() if k not in ("expected", "decision_ok"))
        log(f"[{n}/{len(items)}] {item['id']}: expected {sc['expected']}, got {res['outcome']} "
            f"{'OK' if sc['decision_ok'] else 'WRONG'} {flags} | {what} | {res['latency_s']:.2f}s "
            f"(decision {res['decision_s'] or 0:.2f}s), prompt {res['prompt_tokens_first_call']} tok "
            f"(evaluated {res['evaluated_first_call']}, without tools {res['prompt_tokens_plain']}), "
            f"others {res['others']:.2f} cores, {res['open_fds']} fds open")
    if out is not None:
        out.close()
    return rows, plain_ok


# --- main -------------------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=data.SETS, default="ours", help="which labelled set (default %(default)s)")
    ap.add_argument("--bfcl-wheel", type=Path, default=data.BFCL_WHEEL, help="the bfcl-eval wheel (%(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N items of each category")
    ap.add_argument("--category", choices=data.OURS_CATEGORIES + data.BFCL_CATEGORIES, action="append",
                    help="only this category (may be repeated)")
    ap.add_argument("--slice", action="store_true", help=f"only the regression slice: {', '.join(SLICE)}")
    ap.add_argument("--max-tokens", type=int, default=64,
                    help="max_completion_tokens of each run: answers stay short (default %(default)s)")
    ap.add_argument("--poll-ms", type=int, default=50, help="create_and_poll's poll interval (default %(default)s)")
    ap.add_argument("--no-follow-up", dest="follow_up", action="store_false",
                    help="do not submit stub outputs to collect a parallel item's further calls")
    ap.add_argument("--code-timeout", type=float, default=30.0, help="as `serve --code-timeout` (default 30)")
    ap.add_argument("--client", choices=["loopback", "in-process"], default="loopback",
                    help="the SDK on uvicorn on loopback (default) or on testing.in_process_client (leaks fds)")
    ap.add_argument("--out", type=Path, default=None, help="write per-item results here (JSONL)")
    add_model_options(ap, unit="item")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK marks the Assistants API deprecated

    import openai

    from offline_assistants.api import create_app
    from offline_assistants.config import Settings
    from offline_assistants.engine import Engine
    from offline_assistants.llm.backend import Finish
    from offline_assistants.testing import in_process_client, serve

    items = data.select(data.load(args.set, args.bfcl_wheel), ids=SLICE if args.slice else None,
                        categories=args.category, limit=args.limit)
    categories = data.OURS_CATEGORIES if args.set == "ours" else data.BFCL_CATEGORIES
    log("machine:", json.dumps(machine()))
    log(f"set {args.set}, {len(items)} items: "
        + ", ".join(f"{c} {sum(i['category'] == c for i in items)}" for c in categories))

    started = time.monotonic()
    backend = open_bench_backend(ModelSetup.from_args(args))
    log(f"model {backend.name}, n_ctx {backend.n_ctx}, {type(backend).__name__}, native tool format "
        f"{backend.native_tool_format or 'none (constrained decision + call grammars)'}")

    # Diagnostics only: every model call's prompt length, evaluated tokens, output and end time.
    model_calls: list[dict[str, Any]] = []
    original_generate = backend.generate

    def watched_generate(prompt, sampling, **kw):
        rec = {"kind": _constraint_kind(sampling.constraint), "prompt": len(prompt), "text": ""}
        model_calls.append(rec)
        inner = original_generate(prompt, sampling, **kw)
        try:
            for piece in inner:
                if isinstance(piece, Finish):
                    rec.update(evaluated=piece.prompt_tokens, completion=piece.completion_tokens,
                               t_end=time.perf_counter())
                else:
                    rec["text"] += piece.text
                yield piece
        finally:
            inner.close()

    backend.generate = watched_generate  # type: ignore[method-assign]

    data_dir = Path(tempfile.mkdtemp(prefix="oa-bench-tools-"))
    settings = Settings(data_dir=data_dir, n_ctx=args.n_ctx, code_timeout_s=args.code_timeout)
    runner = None
    if any(data.CODE in i["tools"] for i in items):
        from offline_assistants.tools.code_interpreter import JupyterCodeRunner

        settings.ensure_dirs()
        runner = JupyterCodeRunner(settings.sandbox_dir, timeout_s=settings.code_timeout_s,
                                   memory_mb=settings.code_memory_mb,
                                   max_output_chars=settings.code_max_output_chars,
                                   idle_timeout_s=settings.kernel_idle_timeout_s)
    engine = Engine(settings, backend, code_runner=runner)
    with contextlib.ExitStack() as stack:
        if args.client == "in-process":
            client = in_process_client(create_app(engine), max_retries=0)
        else:
            url = stack.enter_context(serve(create_app(engine)))
            client = openai.OpenAI(base_url=url, api_key="local", max_retries=0)
        rows, plain_ok = run_all(args, items, client, backend, model_calls)

    engine.close()
    backend.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    wall = time.monotonic() - started

    if args.out:
        log(f"per-item results: {args.out}")
    result = report(args, categories, rows, plain_ok, backend.name, wall)
    print(result.line())
    return 0 if result.plain_prompt_check and not result.failed else 1


def report(args: argparse.Namespace, categories: list[str], rows: list[dict[str, Any]], plain_ok: bool, model: str,
           wall: float) -> ToolDecisionsResult:
    """The result, and the tables on stderr."""

    def summary(rs: list[dict[str, Any]]) -> dict[str, str]:
        out = {"n": str(len(rs))}
        for key in ("decision_ok", "right_tool", "arg_match", "args_exact", "abstain", "false_call",
                    "abstain_irrelevant", "parallel_one_turn",
                    "parallel_both", "parallel_both_args"):
            hit, n = data.rate(rs, key)
            out[key] = f"{data.fmt_rate(hit, n)} ({hit}/{n})" if n else ""
        if not out["abstain"]:
            hit, n = data.rate(rs, "code_abstain")
            out["abstain"] = f"{data.fmt_rate(hit, n)} ({hit}/{n}) code" if n else ""
        clean = [r for r in rs if r["others"] < args.busy] or rs
        lat = [r["latency_s"] for r in clean]
        dec = [r["decision_s"] for r in clean if r["decision_s"] is not None]
        out["latency"] = f"{median(lat):.2f} / {percentile(lat, 0.9):.2f}"
        out["decision_s"] = f"{median(dec):.2f}" if dec else ""
        tools_p = [r["prompt_tokens_first_call"] for r in rs if r["prompt_tokens_first_call"]]
        out["prompt"] = f"{median(tools_p):.0f} vs {median([r['prompt_tokens_plain'] for r in rs]):.0f}"
        return out

    cols = [("n", "items"), ("decision_ok", "decision"), ("right_tool", "right tool"), ("arg_match", "args"),
            ("args_exact", "args exact"), ("abstain", "abstain"), ("false_call", "false call"),
            ("abstain_irrelevant", "abstain irrelevant"), ("parallel_one_turn", "parallel 1 turn"),
            ("parallel_both", "parallel both"), ("latency", "latency s p50 / p90"), ("decision_s", "decision s"),
            ("prompt", "prompt tok (tools vs none)")]
    lines = ["| category | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    groups = [(c, [r for r in rows if r["category"] == c]) for c in categories] + [("all", rows)]
    for name, rs in groups:
        if rs:
            s = summary(rs)
            lines.append(f"| {name} | " + " | ".join(s[c[0]] for c in cols) + " |")
    log("results:\n" + "\n".join(lines))
    moves: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        moves[(r["score"]["expected"], r["outcome"])] += 1
    log("expected -> got: " + ", ".join(f"{e}->{g} {k}" for (e, g), k in sorted(moves.items())))
    decided: dict[str, int] = defaultdict(int)
    for r in rows:
        decided[r["decision_text"] or f"({r['first_call_kind']})"] += 1
    log("decision options taken: " + ", ".join(f"{t!r} {k}" for t, k in sorted(decided.items(), key=lambda x: -x[1])))

    def share(key: str, rs: list[dict[str, Any]] | None = None) -> float | None:
        hit, n = data.rate(rs if rs is not None else rows, key)
        return hit / n if n else None

    clean = [r for r in rows if r["others"] < args.busy] or rows
    lat = [r["latency_s"] for r in clean]
    dec = [r["decision_s"] for r in clean if r["decision_s"] is not None]
    evaluated = [r["evaluated_first_call"] for r in rows if r["evaluated_first_call"] is not None]
    result = ToolDecisionsResult(
        set=args.set, items=len(rows), decision=share("decision_ok"), right_tool=share("right_tool"),
        arg_match=share("arg_match"), args_exact=share("args_exact"), abstain_irrelevant=share("abstain_irrelevant"),
        abstain=share("abstain"), code_abstain=share("code_abstain"), false_call=share("false_call"),
        parallel_one_turn=share("parallel_one_turn"), parallel_both=share("parallel_both"),
        parallel_both_args=share("parallel_both_args"),
        decision_by_category={c: share("decision_ok", [r for r in rows if r["category"] == c])
                              for c in categories if any(r["category"] == c for r in rows)},
        latency_p50_s=median(lat), latency_p90_s=percentile(lat, 0.9),
        decision_p50_s=median(dec) if dec else float("nan"),
        prompt_tokens_tools=median([r["prompt_tokens_first_call"] for r in rows if r["prompt_tokens_first_call"]]),
        prompt_tokens_plain=median([r["prompt_tokens_plain"] for r in rows]),
        evaluated_first_call=median(evaluated) if evaluated else float("nan"),
        cut=sum(r["cut"] for r in rows), failed=sum(r["outcome"] == "error" for r in rows),
        loaded=sum(r["others"] >= args.busy for r in rows), plain_prompt_check=plain_ok, max_tokens=args.max_tokens,
        model=model, backend=args.backend, wall_s=wall)
    log(f"wall time {wall:.0f}s; items run with other processes >= {args.busy} cores: {result.loaded}; "
        f"calls cut by max tokens: {result.cut}; failed runs: {result.failed}")
    return result


if __name__ == "__main__":
    sys.exit(main())
