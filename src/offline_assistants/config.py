"""Settings for one server: where data lives, which model, limits. Built by the CLI, or by tests directly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from offline_assistants.datadir import default_data_dir
from offline_assistants.llm.loading import ModelOptions
from offline_assistants.llm.lookup import MAX_DRAFT
from offline_assistants.llm.repack import RepackMode


def usable_cores() -> int:
    # The cores this process may run on, not the machine's total: containers and taskset narrow it.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


LogLevel = Literal["debug", "info", "warning", "error"]
# How code-interpreter kernels are isolated (tools/code_interpreter/sandbox/): auto sandboxes them where bubblewrap
# works and warns where it does not; required refuses to start without a sandbox; off runs them as the server's user.
SandboxMode = Literal["auto", "required", "off"]


@dataclass
class Settings:
    """Every default of the server lives here; the CLI's flags take theirs from these fields."""

    host: str = "127.0.0.1"  # where `serve` listens: this machine only
    port: int = 8000
    log_level: LogLevel = "info"
    data_dir: Path = field(default_factory=default_data_dir)
    db_path: Path | None = None
    model: str | None = None
    models_dir: Path | None = None
    n_ctx: int = 4096
    n_threads: int = field(default_factory=usable_cores)
    n_gpu_layers: int = -1
    cpu_repack: RepackMode = "auto"  # llama.cpp weight repacking; auto probes CPUs with AMX (llm/repack.py)
    api_key: str | None = None
    code_interpreter: bool = True
    code_timeout_s: float = 30.0
    code_memory_mb: int = 2048
    code_sandbox: SandboxMode = "auto"
    code_max_output_chars: int = 20_000
    kernel_idle_timeout_s: float = 600.0
    max_tool_rounds: int = 8
    # Cap on a reply's tokens when the run sets no max_completion_tokens (a client's budget always wins); 0 or
    # None: up to the context window. 1024 is ~6x the longest natural reply measured (benchmarks/replies.py).
    max_output_tokens: int | None = 1024
    temperature: float | None = None  # server-wide sampling defaults over the model's own (llm/defaults.py)
    top_p: float | None = None
    max_file_bytes: int = 512 * 1024 * 1024
    run_expiry_s: int = 600
    # Runs waiting for a worker, at most; past it, creating a run gets the real 429 and stores nothing
    # (a bound, so a flood of runs cannot queue hours of generation that would all expire anyway).
    max_queued_runs: int = 64
    # Runs executing at once, each on its own worker thread (engine/worker.py), FIFO across threads: the local
    # model decodes that many sequences in one batch (llm/batch.py); a remote server that batches gets that many
    # requests in flight; a backend that generates one run at a time (llama-cpp-python's server) gets 1. Four: on
    # 2 cores, 4 sequences decode at least the tokens/s of one (2 do less), and 4 runs progress at once
    # (benchmarks/concurrency.py).
    max_concurrent_runs: int = 4
    # Speculative decoding by prompt lookup on the local model (llm/lookup.py): tokens drafted at most per step;
    # 0: none. The text is the same with it; benchmarks/speculation.py measures what it gains.
    draft_tokens: int = MAX_DRAFT
    # A remote model server (llm/remote.py) instead of the local model: its OpenAI-style base URL, the model name
    # to ask for (default: the first it lists), its API key, and a local tokenizer file (GGUF or tokenizer.json)
    # to count with instead of the server's tokenize endpoint.
    backend_url: str | None = None
    backend_model: str | None = None
    backend_api_key: str | None = None
    tokenizer: Path | None = None
    embedding_model: Path | None = None  # file search: a GGUF to embed with instead of the built-in WordLlama
    kv_cache_states: int = 4  # conversations whose model state is kept for a fast switch back
    kv_cache_mb: int = 512  # and at most this much memory for them

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / "assistants.db"

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandbox"

    def model_options(self) -> ModelOptions:
        """What the model process is started with (llm/loading.py), from these settings."""
        return ModelOptions(n_ctx=self.n_ctx, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers,
                            kv_states=self.kv_cache_states, kv_cache_mb=self.kv_cache_mb, cpu_repack=self.cpu_repack,
                            parallel=max(1, self.max_concurrent_runs), draft=self.draft_tokens)

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.database.parent.mkdir(parents=True, exist_ok=True)
