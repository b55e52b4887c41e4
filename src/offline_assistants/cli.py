"""Command line: `offline-assistants serve` runs the API; `models` lists what can be served; `bench` measures;
`doctor` checks an installation."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import get_args

from offline_assistants import __version__
from offline_assistants.config import LogLevel, SandboxMode, Settings, default_data_dir
from offline_assistants.llm.packed import PACKED
from offline_assistants.llm.repack import RepackMode

# The packed models' names, for the help texts of every --model (llm/packed.py; nothing heavy is imported).
PACKED_NAMES = ", ".join(model.name for model in PACKED)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offline-assistants",
        description="A drop-in, offline replacement for OpenAI's Assistants API (v2). Point the official SDKs at "
        "http://127.0.0.1:PORT/v1 with any API key and they work unchanged, on a local GGUF model.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # Every default below is Settings' own (config.py), so the two cannot drift apart.
    defaults = Settings()
    mib = 1024 * 1024
    serve = sub.add_parser("serve", help="run the API server", description="Run the Assistants API server.")
    _address_options(serve, defaults)
    _where_options(serve, defaults)
    serve.add_argument("--api-key", default=defaults.api_key,
                       help="require `Authorization: Bearer KEY` on every request (default: any key is accepted)")
    serve.add_argument("--n-ctx", type=int, default=defaults.n_ctx,
                       help=f"model context window in tokens (default: {defaults.n_ctx})")
    serve.add_argument("--max-output-tokens", type=int, default=defaults.max_output_tokens,
                       help=f"most tokens one reply may have when the run sets no max_completion_tokens (default: "
                       f"{defaults.max_output_tokens}, several times a natural reply, so a model that never stops "
                       "cannot fill the window); 0 lifts it (up to the context window). A run's "
                       "max_completion_tokens always applies as the API says")
    serve.add_argument("--temperature", type=float, default=defaults.temperature,
                       help="sampling temperature when neither the run nor the assistant sets one (default: the "
                       "model's recommendation, e.g. 0.2 for SmolLM2; a NAME.json next to a GGUF can set it per "
                       "model). Clients that send a temperature always get exactly theirs")
    serve.add_argument("--top-p", type=float, default=defaults.top_p,
                       help="top_p when neither the run nor the assistant sets one (default: the model's "
                       "recommendation, e.g. 0.9 for SmolLM2)")
    serve.add_argument("--threads", type=int, default=defaults.n_threads,
                       help=f"CPU threads for the model (default: every usable core, here {defaults.n_threads})")
    serve.add_argument("--gpu-layers", type=int, default=defaults.n_gpu_layers,
                       help="layers to offload when llama-cpp-python is built with GPU support (default: "
                       f"{defaults.n_gpu_layers}{', all' if defaults.n_gpu_layers == -1 else ''})")
    _repack_option(serve, defaults)
    serve.add_argument("--kv-cache-mb", type=int, default=defaults.kv_cache_mb,
                       help="memory for the model states of recent threads, so switching back to one skips "
                       f"re-reading its history (default: {defaults.kv_cache_mb})")
    serve.add_argument("--no-code-interpreter", dest="code_interpreter", action="store_false",
                       default=defaults.code_interpreter,
                       help="disable the code_interpreter tool (runs that ask for it answer without running code)")
    serve.add_argument("--code-timeout", type=float, default=defaults.code_timeout_s,
                       help=f"seconds one code_interpreter execution may run (default: {defaults.code_timeout_s:g})")
    serve.add_argument("--code-memory-mb", type=int, default=defaults.code_memory_mb,
                       help=f"memory limit of a code_interpreter kernel in MB (default: {defaults.code_memory_mb})")
    _sandbox_option(serve, defaults)
    serve.add_argument("--max-file-mb", type=int, default=defaults.max_file_bytes // mib,
                       help=f"largest accepted upload in MB (default: {defaults.max_file_bytes // mib})")
    serve.add_argument("--max-queued-runs", type=int, default=defaults.max_queued_runs,
                       help="runs that may wait for the model at once; past it, creating a run gets HTTP 429 "
                       f"rate_limit_exceeded and stores nothing; 0 lifts it (default: {defaults.max_queued_runs})")
    serve.add_argument("--parallel", "--max-concurrent-runs", dest="max_concurrent_runs", type=int,
                       default=defaults.max_concurrent_runs, metavar="N",
                       help="runs on different threads that execute at once, started in the order they were "
                       "created: the local model decodes them together in one batch, a batching model server "
                       "(--backend-url) gets N requests in flight; each takes a KV cache of --n-ctx tokens "
                       f"(default: {defaults.max_concurrent_runs})")
    serve.add_argument("--draft-tokens", type=int, default=defaults.draft_tokens, metavar="N",
                       help="speculative decoding on the local model: up to N tokens guessed from the context "
                       "(a quoted tool output, passage or request) are checked in the same decode; the text is "
                       f"the same, only faster; 0 turns it off (default: {defaults.draft_tokens})")
    _backend_options(serve, defaults)
    serve.add_argument("--embedding-model", type=Path, default=defaults.embedding_model, metavar="PATH.gguf",
                       help="an embedding GGUF for file search and /v1/embeddings, loaded through llama-cpp-python "
                       "(default: the 256-dimension WordLlama model that ships inside the wordllama package)")
    serve.add_argument("--log-level", default=defaults.log_level, choices=get_args(LogLevel),
                       help="how much the server logs to stderr: info adds one line per request and notes such as "
                       "idle kernels shut down, debug also the server's internals, warning and error only problems "
                       f"(default: {defaults.log_level})")

    models = sub.add_parser("models", help="list the models this server can load",
                            description="List the GGUF models found: ./models (or --models-dir), the embedded one, "
                            f"and the packed models whose packages are installed ({PACKED_NAMES}).")
    models.add_argument("--models-dir", type=Path, default=defaults.models_dir,
                        help="folder of extra .gguf files to list besides the embedded model (default: ./models)")
    models.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                        help="the data directory whose models/ folder packed models are assembled into (default: "
                        "as serve's)")

    bench = sub.add_parser(
        "bench", help="measure truncation, throughput and time to first token on this machine and model",
        description="Run the truncation, throughput and time-to-first-token measurements on this machine and model "
                    "and print one table, each figure next to its baseline from the same run (raw "
                    "llama-cpp-python, a naive re-tokenizing window) and the ratio. The same code as the scripts "
                    "in benchmarks/, with shorter runs; progress goes to stderr. Takes a few minutes on two cores.")
    bench.add_argument("--model", default=defaults.model,
                       help=f"a .gguf path or model name ({PACKED_NAMES}, ...), as `serve --model` (default: the "
                       "embedded default)")
    bench.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the usable cores)")
    bench.add_argument("--only", default="truncation,throughput,ttft",
                       help="which measurements, comma-separated (default: %(default)s)")
    bench.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")

    convert = sub.add_parser(
        "convert-thread", help="copy an Assistants thread into a Responses conversation",
        description="Copy a thread's messages (with their files, attachments and annotations) into a new "
                    "conversation that `client.responses.create(conversation=...)` continues, and print the "
                    "conversation's id and which item each message became, as JSON. The thread is left as it was. "
                    "Works on the database directly (stop the server first, or use its "
                    "POST /v1/threads/{thread_id}/x_conversation instead); no model is loaded.")
    convert.add_argument("thread_id", nargs="+", help="the thread(s) to convert")
    convert.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                         help=f"the server's data directory (default: as serve's, {default_data_dir()})")
    convert.add_argument("--db", type=sqlite_file, default=defaults.db_path,
                         help="SQLite database file (default: assistants.db inside the data directory)")

    doctor = sub.add_parser(
        "doctor", help="check this installation and say how to fix what is broken",
        description="Check what `serve` needs, with the same options: the data dir (writable, not writable by "
                    "others, free disk), the database (SQLite, integrity, WAL, size, migrations), whether the port "
                    "is free, the code interpreter's sandbox, a kernel's start and execute times, and that the "
                    "model loads and generates (with the CPU repack verdict). Each line is ok, WARN or FAIL; each "
                    "problem comes with its fix in one sentence. Exits 1 when something is broken (a FAIL), else 0. "
                    "Loading the model takes a few seconds; --model scripted skips it.")
    _address_options(doctor, defaults)
    _where_options(doctor, defaults)
    _repack_option(doctor, defaults)
    _sandbox_option(doctor, defaults)
    return parser


def _backend_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    parser.add_argument("--backend-url", default=defaults.backend_url, metavar="URL",
                        help="run on a remote model server instead of a local model: the OpenAI-style base URL of "
                        "vLLM, llama.cpp's llama-server or llama-cpp-python's server (e.g. http://gpu-box:8000/v1); "
                        "what it supports is probed at start-up (README, Remote model servers)")
    parser.add_argument("--backend-model", default=defaults.backend_model, metavar="NAME",
                        help="the model to ask the server for (default: the first its /v1/models lists)")
    parser.add_argument("--backend-api-key", default=defaults.backend_api_key, metavar="KEY",
                        help="the server's API key, sent as `Authorization: Bearer KEY` (default: none)")
    parser.add_argument("--tokenizer", type=Path, default=defaults.tokenizer, metavar="FILE",
                        help="count tokens with this file instead of the server's tokenize endpoint: the served "
                        "model's GGUF or its tokenizer.json (with tokenizer_config.json beside it for the chat "
                        "template) (default: the server's own tokenizer)")


def _address_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    """Where `serve` listens; `doctor` checks the same address."""
    parser.add_argument("--host", default=defaults.host,
                        help=f"address to bind (default: {defaults.host}, this machine only; use 0.0.0.0 to expose "
                        "it)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help=f"port to listen on (default: {defaults.port})")


def _where_options(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    """The data, database and model `serve` uses: one definition, so `doctor` checks exactly what serve
    would open."""
    parser.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                        help=f"where the database and files live (default: $OFFLINE_ASSISTANTS_DATA if set, else "
                        f"{default_data_dir()})")
    parser.add_argument("--db", type=sqlite_file, default=defaults.db_path,
                        help="SQLite database file (default: assistants.db inside the data directory)")
    parser.add_argument("--model", default=defaults.model,
                        help="a .gguf path, the name of a model from `offline-assistants models`, a packed model's "
                        f"name ({PACKED_NAMES}: assembled into the data dir from its installed packages the first "
                        "time, each checked against its pinned sha256; docs/models.md), or `scripted` (no model: "
                        "replies, calls and failures come from a script you post to /_script, for testing apps) "
                        "(default: the first .gguf in ./models, else the embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--models-dir", type=Path, default=defaults.models_dir,
                        help="folder of extra .gguf files (default: ./models)")


def _repack_option(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    """llama.cpp weight repacking, for serve and for doctor's model check."""
    parser.add_argument("--cpu-repack", choices=get_args(RepackMode), default=defaults.cpu_repack,
                        help="let llama.cpp repack the weights for this CPU (AMX, AVX2/AVX-512, ARM kernels): faster "
                        "prompts, but llama.cpp built by GCC < 13.2 crashes in its AMX path. auto: on, except on a "
                        "CPU with AMX where a one-off probe (cached in the data dir) sees it crash (default: "
                        f"{defaults.cpu_repack})")


def _sandbox_option(parser: argparse.ArgumentParser, defaults: Settings) -> None:
    parser.add_argument("--code-sandbox", choices=get_args(SandboxMode), default=defaults.code_sandbox,
                        help="run each code_interpreter kernel in a bubblewrap sandbox that sees only its thread's "
                        "files, with no network and a cap on processes. auto: sandboxed where bubblewrap works, "
                        "else a warning at start-up; required: refuse to start without it; off: kernels run as "
                        f"the server's user (default: {defaults.code_sandbox})")


def sqlite_file(text: str) -> Path:
    """--db: an SQLite file. A database URL (postgresql://...) is refused: taken as a path it would quietly make a
    folder named "postgresql:" with an SQLite file in it, which two servers would then share."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise argparse.ArgumentTypeError(
            f"{text.split('://')[0]}:// URLs are not supported: --db takes an SQLite file (a PostgreSQL store is "
            "planned, see docs/scaling.md)")
    return Path(text)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host, port=args.port, log_level=args.log_level, data_dir=args.data_dir, db_path=args.db,
        model=args.model, models_dir=args.models_dir, api_key=args.api_key, n_ctx=args.n_ctx, n_threads=args.threads,
        n_gpu_layers=args.gpu_layers, code_interpreter=args.code_interpreter, code_timeout_s=args.code_timeout,
        code_memory_mb=args.code_memory_mb, max_file_bytes=args.max_file_mb * 1024 * 1024,
        max_output_tokens=args.max_output_tokens, kv_cache_mb=args.kv_cache_mb, cpu_repack=args.cpu_repack,
        temperature=args.temperature, top_p=args.top_p, embedding_model=args.embedding_model,
        max_queued_runs=args.max_queued_runs, code_sandbox=args.code_sandbox,
        max_concurrent_runs=args.max_concurrent_runs, draft_tokens=args.draft_tokens, backend_url=args.backend_url,
        backend_model=args.backend_model, backend_api_key=args.backend_api_key, tokenizer=args.tokenizer,
    )


class _Stderr:
    """serve's report: what it chose, one line each; a slow step's elapsed time rewritten in place."""

    def __init__(self) -> None:
        self._open = 0  # the length of the unfinished progress line on screen, 0 when none

    def line(self, text: str) -> None:
        # Padded over the progress line it replaces, so no tail of a longer one stays on screen.
        print(("\r" + text.ljust(self._open)) if self._open else text, file=sys.stderr, flush=True)
        self._open = 0

    def progress(self, text: str) -> None:
        print("\r" + text.ljust(self._open), end="", file=sys.stderr, flush=True)
        self._open = len(text)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from offline_assistants.launch import SCRIPTED, LaunchError, build

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    settings = _settings(args)
    report = _Stderr()
    try:
        server = build(settings, say=report)
    except LaunchError as exc:
        report.line(f"error: {exc.message}")
        return exc.exit_code
    if settings.model == SCRIPTED and not settings.backend_url:
        report.line(f"script:   POST http://{args.host}:{args.port}/_script/steps (see README, Testing your app)")
    report.line(f"database: {settings.database}")
    report.line(f"files:    {settings.files_dir}")
    report.line(f"auth:     {'API key required' if settings.api_key else 'any API key accepted'}")
    report.line(f"page:     http://{args.host}:{args.port}/ (the playground)")
    report.line(f"serving:  OPENAI_BASE_URL=http://{args.host}:{args.port}/v1")
    try:
        uvicorn.run(server.app(), host=args.host, port=args.port, log_level=args.log_level)
    finally:
        server.close()
    return 0


def convert_threads(settings: Settings, thread_ids: list[str]) -> int:
    import json

    from offline_assistants.engine.conversations import from_thread
    from offline_assistants.errors import APIError
    from offline_assistants.store import Database, Store

    if not settings.database.exists():
        print(f"no database at {settings.database}", file=sys.stderr)
        return 1
    store = Store(Database(settings.database))
    try:
        for thread_id in thread_ids:
            try:
                print(json.dumps(from_thread(store, thread_id).model_dump(mode="json")))
            except APIError as exc:
                print(f"{thread_id}: {exc.message}", file=sys.stderr)
                return 1
    finally:
        store.close()
    return 0


def list_models(args: argparse.Namespace) -> int:
    from offline_assistants.llm.catalog import available

    for model in available(args.models_dir, args.data_dir):
        print(f"{model.name}\t{model.path}" + (f"\t({model.source})" if model.source else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "models":
        return list_models(args)
    if args.command == "bench":
        from offline_assistants.bench.run import QUICK
        from offline_assistants.bench.run import bench as run_bench

        only = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in only if name not in QUICK]
        if unknown:
            parser.error(f"--only: unknown measurement {unknown[0]!r} (known: {', '.join(QUICK)})")
        return run_bench(model=args.model, threads=args.threads, only=only, as_json=args.json)
    if args.command == "convert-thread":
        return convert_threads(Settings(data_dir=args.data_dir, db_path=args.db), args.thread_id)
    if args.command == "doctor":
        from offline_assistants.doctor import run

        return run(Settings(host=args.host, port=args.port, data_dir=args.data_dir, db_path=args.db, model=args.model,
                            models_dir=args.models_dir, cpu_repack=args.cpu_repack, code_sandbox=args.code_sandbox))
    parser.print_help()
    return 0
