"""/v1/embeddings against the embedding library called directly: inputs/s for batches of 1, 16 and 256 short texts.

Two ways, in one run, on the same texts (short chat messages, 2 to 40 words, from bench/common.py):
- direct: the library an app would otherwise call in its own process: wordllama's `WordLlama.embed(texts,
  norm=True)` for the built-in model, llama-cpp-python's `Llama.embed(text)` one text at a time (mean-pooled where
  the model has no pooling layer) for --embedding-model PATH.gguf;
- server: `client.embeddings.create(input=texts, model=...)` with the official SDK over loopback HTTP onto a
  server on that model (in this process, as tests/ serve it), as an app calls it: the SDK asks for base64 and
  decodes it. `server_float` is the same with encoding_format="float" (JSON numbers), for comparison.
Each batch size: --rounds rounds, in rotating order, of each way called for at least --seconds; the median of the
rounds' inputs/s. Reported as ratios against direct (above 1: the server is faster). Other processes' CPU use is
printed with every round (a shared machine); rounds are not retaken, so a loaded machine shows in the spread.
`round_trip_ms` is the floor under every server figure: the median time of an SDK request that asks the server for
nothing (`models.retrieve`), over the same connection.

measure() returns an EmbeddingsResult; the script prints its line: RESULT embeddings ...
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offline_assistants.bench.common import chat_message, fmt, log, machine
from offline_assistants.bench.measure import OtherLoad, median

WAYS = ("direct", "server", "server_float")


@dataclass(frozen=True)
class Batch:
    size: int
    inputs_s: dict[str, float]  # by way: the median over rounds
    spread: dict[str, tuple[float, float]]  # by way: the slowest and fastest round
    others_cores: float  # other processes' CPU use while this batch size was measured

    def ratio(self, way: str) -> float:
        return self.inputs_s[way] / self.inputs_s["direct"]


@dataclass(frozen=True)
class EmbeddingsResult:
    model: str
    cpu: str
    round_trip_ms: float
    batches: tuple[Batch, ...]

    def line(self) -> str:
        fields = [f"model={self.model}", f"cpu={self.cpu.replace(' ', '_')}", f"round_trip_ms={self.round_trip_ms:.2f}"]
        for b in self.batches:
            fields += [f"b{b.size}_{way}_inputs_s={fmt(b.inputs_s[way])}" for way in WAYS]
            fields += [f"b{b.size}_server_ratio={b.ratio('server'):.3f}",
                       f"b{b.size}_server_float_ratio={b.ratio('server_float'):.3f}",
                       f"b{b.size}_others_cores={b.others_cores:.2f}"]
        return "RESULT embeddings " + " ".join(fields)


def texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [chat_message(rng, "user") for _ in range(n)]


def direct_wordllama() -> Callable[[list[str]], Any]:
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, dim=256, disable_download=True)
    return lambda batch: model.embed(batch, norm=True)


def direct_gguf(path: Path) -> Callable[[list[str]], Any]:
    from llama_cpp import Llama

    # As retrieval/embeddings.py's LlamaEmbedder opens it: the same context, batch and threads.
    llm = Llama(model_path=str(path), embedding=True, n_ctx=2048, n_batch=2048, n_ubatch=2048, verbose=False)

    def embed(batch: list[str]) -> list[Any]:
        out = []
        for text in batch:
            vec = np.asarray(llm.embed(text, normalize=True), dtype=np.float32)
            out.append(vec.mean(axis=0) if vec.ndim == 2 else vec)
        return out

    return embed


def rate(call: Callable[[list[str]], Any], batch: list[str], seconds: float) -> float:
    """Inputs/s of `call` on `batch`, called until at least `seconds` have passed (once, if one call takes that)."""
    calls = 0
    started = time.perf_counter()
    while calls == 0 or time.perf_counter() - started < seconds:
        call(batch)
        calls += 1
    return calls * len(batch) / (time.perf_counter() - started)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedding-model", type=Path, metavar="PATH.gguf",
                    help="an embedding GGUF, as `serve --embedding-model` takes (default: the built-in WordLlama)")
    ap.add_argument("--sizes", default="1,16,256", help="batch sizes (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each way per size (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="each way is called for at least this long in a round (default: %(default)s)")
    args = ap.parse_args()
    print(measure(args).line())
    return 0


def measure(args: argparse.Namespace) -> EmbeddingsResult:
    import openai

    from offline_assistants.api import create_app
    from offline_assistants.config import Settings
    from offline_assistants.engine import Engine
    from offline_assistants.llm.canned import CannedBackend
    from offline_assistants.testing import serve

    info = machine()
    log("machine:", info)
    folder = Path(tempfile.mkdtemp(prefix="bench-embeddings-"))
    # The chat model plays no part in /v1/embeddings: a canned one keeps it out of the measurement.
    engine = Engine(Settings(data_dir=folder, embedding_model=args.embedding_model), CannedBackend())
    name = engine.embeddings.name
    # Loaded before the clock starts; first, since its import undoes what importing wordllama does to logging.
    engine.embedder()
    direct = direct_gguf(args.embedding_model) if args.embedding_model else direct_wordllama()
    sizes = [int(s) for s in args.sizes.split(",")]
    corpus = texts(max(sizes))
    batches = []
    try:
        with serve(create_app(engine)) as url, openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client:
            ways: dict[str, Callable[[list[str]], Any]] = {
                "direct": direct,
                "server": lambda batch: client.embeddings.create(input=batch, model="text-embedding-3-small"),
                "server_float": lambda batch: client.embeddings.create(input=batch, model="text-embedding-3-small",
                                                                       encoding_format="float"),
            }
            for way in ways.values():  # warm: first calls pay for imports, connections, llama.cpp's buffers
                way(corpus[:4])
            trips = []
            for _ in range(200):
                started = time.perf_counter()
                client.models.retrieve("text-embedding-3-small")
                trips.append(time.perf_counter() - started)
            round_trip_ms = median(trips) * 1000
            log(f"an SDK request that asks for nothing: {round_trip_ms:.2f} ms")
            for size in sizes:
                batch = corpus[:size]
                samples: dict[str, list[float]] = {way: [] for way in WAYS}
                load = OtherLoad().start()
                for r in range(args.rounds):
                    order = WAYS[r % 3:] + WAYS[:r % 3]
                    meter = OtherLoad().start()
                    for way in order:
                        samples[way].append(rate(ways[way], batch, args.seconds))
                    log(f"batch {size} round {r}: " + ", ".join(f"{w} {fmt(samples[w][-1])}/s" for w in WAYS)
                        + f" (others {meter.stop():.2f} cores)")
                batches.append(Batch(size, {w: median(v) for w, v in samples.items()},
                                     {w: (min(v), max(v)) for w, v in samples.items()}, load.stop()))
                b = batches[-1]
                log(f"batch {size}: server {b.ratio('server'):.3f}x direct, float {b.ratio('server_float'):.3f}x")
    finally:
        engine.close()
    return EmbeddingsResult(name, info.get("cpu", "unknown"), round_trip_ms, tuple(batches))


if __name__ == "__main__":
    raise SystemExit(main())
