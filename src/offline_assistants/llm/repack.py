"""Whether llama.cpp may repack the model's weights into its extra buffer types (AMX, and the CPU repacks).

Repacking speeds up prompt processing on most CPUs. On x86 CPUs with AMX it routes matrix products through
`ggml_backend_amx_mul_mat`, and llama.cpp built by GCC older than 13.2.1 (Debian 12 ships 12.2) faults there on
`ldtilecfg`: that GCC's `_tile_loadconfig` tells the compiler it reads 8 of the tile config's 64 bytes, so the
stores filling the rest may be dropped (ggml-org/llama.cpp#20824). llama-cpp-python compiles llama.cpp with the
user's compiler, so whether a machine crashes cannot be known from the CPU alone.

`--cpu-repack auto` therefore asks: on a CPU that reports AMX, a throwaway model process loads the model with
repacking on and decodes a few tokens; if it dies, repacking is turned off. The verdict is cached in the data
dir, keyed by CPU model and flags, llama-cpp-python version and model file, so the probe runs once per machine
and model. Elsewhere (ARM, AVX2, AVX-512 without AMX) repacking is kept: there it works and pays.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RepackMode = Literal["auto", "on", "off"]
REPACK_MODES: tuple[RepackMode, ...] = ("auto", "on", "off")


@dataclass(frozen=True)
class CpuInfo:
    machine: str  # platform.machine(): x86_64, aarch64, ...
    model: str
    flags: frozenset[str]

    @property
    def has_amx(self) -> bool:
        return "amx_tile" in self.flags

    @classmethod
    def read(cls, cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
        model, flags = "", frozenset[str]()
        try:
            text = cpuinfo.read_text(errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "CPU part") and not model:
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = frozenset(value.split())
        return cls(platform.machine(), model or platform.processor(), flags)


@dataclass(frozen=True)
class RepackChoice:
    enabled: bool
    reason: str

    def banner(self) -> str:
        return f"cpu repack: {'on' if self.enabled else 'off'} ({self.reason})"


@dataclass(frozen=True)
class ProbeResult:
    outcome: Literal["passed", "crashed", "error"]
    detail: str  # the signal or exit status for a crash, the message for an error


class VerdictCache:
    """Probe verdicts in one small JSON file: {key: {"enabled": bool, "reason": str}}."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> RepackChoice | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("enabled"), bool):
            return None
        return RepackChoice(bool(entry["enabled"]), str(entry.get("reason", "")))

    def put(self, key: str, choice: RepackChoice) -> None:
        data = self._read()
        data[key] = {"enabled": choice.enabled, "reason": choice.reason}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)  # atomic: two servers starting at once never read half a file


def verdict_key(cpu: CpuInfo, model: Path, llama_version: str) -> str:
    stat = model.stat()
    facts = [cpu.machine, cpu.model, sorted(cpu.flags), llama_version, str(model.resolve()), stat.st_size,
             stat.st_mtime_ns]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:24]


BATCHED = ("runs decode together: repacked weights take another kernel for one row than for four, so a run's "
           "temperature-0 text would depend on its company; --cpu-repack on to trade that for faster prompts")


def choose(mode: RepackMode, cpu: CpuInfo, *, probe: Callable[[], ProbeResult], cache: VerdictCache,
           key: str, parallel: int = 1) -> RepackChoice:
    """The one decision. `probe` runs a throwaway model process with repacking on (see probe_with_process).
    `parallel`: sequences the model decodes together (llm/batch.py); above 1, auto keeps repacking off."""
    if mode == "on":
        return RepackChoice(True, "--cpu-repack on")
    if mode == "off":
        return RepackChoice(False, "--cpu-repack off")
    if parallel > 1:
        return RepackChoice(False, BATCHED)
    if not cpu.has_amx:
        return RepackChoice(True, "no AMX on this CPU, where repacking is safe")
    cached = cache.get(key)
    if cached is not None:
        return RepackChoice(cached.enabled, f"{cached.reason}; cached")
    result = probe()
    if result.outcome == "passed":
        choice = RepackChoice(True, "AMX probe passed")
    elif result.outcome == "crashed":
        choice = RepackChoice(False, f"AMX probe crashed ({result.detail}); --cpu-repack on to force")
    else:  # the probe could not tell (the model failed to load at all): stay safe, and ask again next time
        return RepackChoice(False, f"AMX probe failed: {result.detail}; --cpu-repack on to force")
    cache.put(key, choice)
    return choice

