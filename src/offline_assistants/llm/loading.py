"""From a model file and settings to the backend the server runs: the repack decision, then the model process.

This is the one place that builds a llama.cpp backend for serving; the CLI and `testing.load_default_backend` both
come through here, so tests run the model exactly as `offline-assistants serve` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from offline_assistants.llm.catalog import ModelFile
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.lookup import MAX_DRAFT
from offline_assistants.llm.messages import DEFAULT_LOADER, ChildSpec
from offline_assistants.llm.process import LoadFailed, ModelProcess, ProcessBackend
from offline_assistants.llm.repack import (
    CpuInfo,
    ProbeResult,
    RepackChoice,
    RepackMode,
    VerdictCache,
    choose,
    verdict_key,
)

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 300.0
VERDICTS_FILE = "cpu-repack.json"


@dataclass(frozen=True)
class ModelOptions:
    n_ctx: int = 4096
    n_threads: int = 1
    n_gpu_layers: int = -1
    kv_states: int = 4
    kv_cache_mb: int = 512
    cpu_repack: RepackMode = "auto"
    parallel: int = 1  # sequences decoded together (llm/batch.py): runs that generate at once
    draft: int = MAX_DRAFT  # tokens drafted at most per step (llm/lookup.py); 0: no speculation

    def child_options(self, path: Path, repack: bool) -> dict[str, object]:
        return {"path": str(path), "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "n_gpu_layers": self.n_gpu_layers, "kv_states": self.kv_states, "kv_cache_mb": self.kv_cache_mb,
                "cpu_repack": repack, "parallel": self.parallel, "draft": self.draft}


def probe_repack(path: Path, options: ModelOptions, *, timeout_s: float = PROBE_TIMEOUT_S,
                 loader: str = DEFAULT_LOADER) -> ProbeResult:
    """Load the model with repacking on in a throwaway process and decode a few tokens (the child's warm-up)."""
    spec = ChildSpec({**options.child_options(path, True), "n_ctx": 512, "kv_states": 0, "parallel": 1}, loader=loader)
    process = ModelProcess(spec, max_load_failures=1, retry_after_s=0.0, quiet=True)
    try:
        process.wait_ready(timeout_s)
        return ProbeResult("passed", "")
    except LoadFailed as failure:
        return ProbeResult("crashed", failure.reason) if failure.crashed else ProbeResult("error", failure.message)
    finally:
        process.close()


def decide_repack(path: Path, options: ModelOptions, cache_dir: Path) -> tuple[RepackChoice, VerdictCache, str]:
    import llama_cpp

    cpu = CpuInfo.read()
    cache = VerdictCache(cache_dir / VERDICTS_FILE)
    key = verdict_key(cpu, path, llama_cpp.__version__)
    choice = choose(options.cpu_repack, cpu, probe=lambda: probe_repack(path, options), cache=cache, key=key,
                    parallel=options.parallel)
    return choice, cache, key


def open_backend(model: ModelFile, options: ModelOptions, *, cache_dir: Path, wait: bool = True
                 ) -> tuple[ProcessBackend, RepackChoice]:
    """The model in its own process, repacking as decided. Raises ModelError when it cannot be loaded."""
    choice, cache, key = decide_repack(model.path, options, cache_dir)
    auto = options.cpu_repack == "auto"

    def on_crash(spec: ChildSpec, reason: str) -> ChildSpec:
        # auto must never crash twice for the same cause: a child that dies with repacking on is the probe's
        # answer, whatever the probe said before.
        if auto and spec.options.get("cpu_repack"):
            verdict = RepackChoice(False, f"the model process crashed with repacking on ({reason}); "
                                          "--cpu-repack on to force")
            cache.put(key, verdict)
            log.warning("%s", verdict.banner())
            return spec.replace(cpu_repack=False)
        return spec

    tokenizer = LlamaTokenizer(model.path, name=model.name)
    spec = ChildSpec(options.child_options(model.path, choice.enabled))
    backend = ProcessBackend(tokenizer, spec, wait=wait, on_crash=on_crash)
    return backend, choice
