"""What speculative decoding by prompt lookup (llm/lookup.py) buys: tokens/s with and without it, on the model
alone (llm/batch.py's BatchedLlama in this process, as the model process runs it), in the same run.

Two sets of prompts, each greedy (temperature 0, the model's repeat penalty) up to --max-tokens:

  copy   replies that copy their context, as the runs this is for do: an answer quoting a tool's output or a
         file-search passage, code restating the request's numbers, JSON arguments copying phrases of the request,
         a text repeated or corrected (COPY below, 8 prompts)
  free   free replies: benchmarks/data/everyday_prompts.json, the prompts benchmarks/replies.py sends (--free N of
         them; facts, lists, how-tos, short writing)

Two BatchedLlama on the same GGUF and threads, one with `draft=MAX_DRAFT` (the default) and one with `draft=0`,
take each prompt in turn, the order alternating per prompt, each prompt with a cache key of its own so neither
reuses the other's cells. Per prompt: generation tok/s ((tokens - 1) / first token to last), and whether the two
texts are the same token for token (they must be: `same` counts them). Per set: the median of the per-prompt
ratios, and the sum of tokens over the sum of generation time (`agg`); the acceptance: tokens kept of those
drafted. Targets (issue 26): copy >= 1.3x, free >= 0.97x, the same text on both.

    python benchmarks/speculation.py                 # 8 copy prompts, 30 free, 160 tokens: ~4 min on 2 cores
    python benchmarks/speculation.py --quick         # 3 and 5 prompts, 96 tokens
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from offline_assistants.llm.backend import Finish, Sampling
from offline_assistants.llm.batch import BatchedLlama
from offline_assistants.llm.catalog import default_model, resolve
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.lookup import MAX_DRAFT

DATA = Path(__file__).parent / "data" / "everyday_prompts.json"
WEATHER = ('{"city": "Lisbon", "temperature_c": 18.5, "condition": "partly cloudy", "humidity": 71, '
           '"wind_kph": 14, "forecast": [{"day": "Tuesday", "high_c": 21, "low_c": 13}, '
           '{"day": "Wednesday", "high_c": 19, "low_c": 12}]}')
PASSAGE = ("Refunds are available within 30 days of purchase for items in their original packaging. To request a "
           "refund, customers must contact support@example.com with their order number, the reason for the return "
           "and a photo of the item. Refunds are issued to the original payment method within 5 to 7 business "
           "days after the returned item is received at our warehouse in Rotterdam.")
COPY = [
    ("tool output", f"The get_weather tool returned:\n{WEATHER}\n\nTell me the weather in Lisbon and the forecast, "
                    "with every figure."),
    ("passage", f"From the policy document:\n\"{PASSAGE}\"\n\nHow do I get a refund? Quote the relevant sentences."),
    ("code", "Write Python code that stores these prices in a list and prints their mean: 12.99, 7.49, 103.20, 55.00, "
             "18.75, 42.10, 9.99, 61.35."),
    ("json args", "Return JSON with the fields name, email, street and city for: Maria Fernanda Oliveira, "
                  "maria.oliveira@example.org, 221 Rua Augusta, Lisbon."),
    ("repeat", f"Repeat this text exactly:\n\n{PASSAGE}"),
    ("correct", "Fix the spelling in this text and write it out again: Teh meeting wil be held on Thursday at the "
                "main ofice. Pleese bring youre laptop and the quartely report, and arive ten minuts early."),
    ("table", f"Turn this into a Markdown table of day, high and low:\n{WEATHER}"),
    ("summary quote", f"Here is a passage:\n{PASSAGE}\n\nWhere is the warehouse, and how long do refunds take? "
                      "Answer with the exact words of the passage."),
]


@dataclass(frozen=True)
class Sample:
    tokens: tuple[int, ...]
    tok_s: float
    drafted: int
    accepted: int


def generate(model: BatchedLlama, prompt: list[int], max_tokens: int, key: str) -> Sample:
    tokens: list[int] = []
    first = last = 0.0
    finish: Finish | None = None
    for item in model.generate(prompt, Sampling(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.1),
                               cache_key=key):
        if isinstance(item, Finish):
            finish = item
            continue
        last = time.perf_counter()
        first = first or last
        tokens.append(item.token)
    assert finish is not None
    rate = (len(tokens) - 1) / (last - first) if len(tokens) > 1 and last > first else 0.0
    return Sample(tuple(tokens), rate, finish.drafted, finish.accepted)


def measure(name: str, prompts: list[list[int]], fast: BatchedLlama, plain: BatchedLlama, max_tokens: int) -> str:
    ratios, same, tokens, seconds_fast, seconds_plain, drafted, accepted = [], 0, 0, 0.0, 0.0, 0, 0
    for i, prompt in enumerate(prompts):
        order = [(fast, "fast"), (plain, "plain")] if i % 2 == 0 else [(plain, "plain"), (fast, "fast")]
        got = {label: generate(model, prompt, max_tokens, f"{name}-{i}-{label}") for model, label in order}
        a, b = got["fast"], got["plain"]
        same += a.tokens == b.tokens
        if a.tok_s and b.tok_s:
            ratios.append(a.tok_s / b.tok_s)
            tokens += len(a.tokens) - 1
            seconds_fast += (len(a.tokens) - 1) / a.tok_s
            seconds_plain += (len(b.tokens) - 1) / b.tok_s
        drafted += a.drafted
        accepted += a.accepted
        print(f"  {name} {i}: {len(a.tokens)} tokens, {a.tok_s:.1f} vs {b.tok_s:.1f} tok/s "
              f"({a.tok_s / max(b.tok_s, 1e-9):.2f}x), kept {a.accepted}/{a.drafted}, same={a.tokens == b.tokens}",
              file=sys.stderr, flush=True)
    agg = seconds_plain / seconds_fast if seconds_fast else 0.0
    return (f"{name}_ratio={statistics.median(ratios):.3f} {name}_agg={agg:.3f} "
            f"{name}_tok_s={tokens / seconds_fast:.1f}/{tokens / seconds_plain:.1f} "
            f"{name}_kept={accepted}/{drafted} {name}_same={same}/{len(prompts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a GGUF path or a catalogue name (default: the embedded one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--free", type=int, default=30, help="how many everyday prompts (default: 30)")
    parser.add_argument("--quick", action="store_true", help="3 copy prompts, 5 free ones, 96 tokens")
    args = parser.parse_args()
    if args.quick:
        args.max_tokens, args.free = 96, 5
    found = resolve(args.model) if args.model else default_model()
    assert found is not None, "no model found"
    tokenizer = LlamaTokenizer(found.path)
    print(f"loading {found.path.name} twice (draft {MAX_DRAFT} and 0), {args.threads} threads", file=sys.stderr)
    fast = BatchedLlama(found.path, n_ctx=4096, n_threads=args.threads, parallel=1, kv_states=0)
    plain = BatchedLlama(found.path, n_ctx=4096, n_threads=args.threads, parallel=1, kv_states=0, draft=0)
    system = tokenizer.encode_system("You are a helpful assistant.")

    def encode(text: str) -> list[int]:
        return system + tokenizer.encode_message("user", text) + tokenizer.generation_prefix()

    copy = [encode(text) for _, text in COPY[: 3 if args.quick else len(COPY)]]
    free = [encode(p["prompt"]) for p in json.loads(DATA.read_text())["prompts"][: args.free]]
    line = " ".join([measure("copy", copy, fast, plain, args.max_tokens),
                     measure("free", free, fast, plain, args.max_tokens)])
    print(f"RESULT speculation model={found.path.name} threads={args.threads} max_tokens={args.max_tokens} "
          f"draft={MAX_DRAFT} {line}")


if __name__ == "__main__":
    main()
