"""--cpu-repack: the decision (with the probe's child dying, for real or simulated), its cache, and the auto
mode's correction when a model process dies with repacking on."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from offline_assistants.llm.backend import Piece, Sampling
from offline_assistants.llm.catalog import default_model
from offline_assistants.llm.loading import ModelOptions, decide_repack, open_backend, probe_repack
from offline_assistants.llm.process import ModelCrashed
from offline_assistants.llm.repack import (
    BATCHED,
    CpuInfo,
    ProbeResult,
    RepackChoice,
    VerdictCache,
    choose,
    verdict_key,
)

AMX = CpuInfo("x86_64", "Intel(R) Xeon(R) Platinum 8488C", frozenset({"avx2", "avx512f", "amx_tile", "amx_int8"}))
AVX2 = CpuInfo("x86_64", "AMD EPYC 7B13", frozenset({"avx2", "fma"}))
ARM = CpuInfo("aarch64", "", frozenset({"asimd", "sve"}))


class Probe:
    def __init__(self, result: ProbeResult) -> None:
        self.result = result
        self.calls = 0

    def __call__(self) -> ProbeResult:
        self.calls += 1
        return self.result


def test_forced_modes_never_probe(tmp_path: Path) -> None:
    probe = Probe(ProbeResult("crashed", "SIGSEGV"))
    cache = VerdictCache(tmp_path / "v.json")
    assert choose("on", AMX, probe=probe, cache=cache, key="k") == RepackChoice(True, "--cpu-repack on")
    assert choose("off", AVX2, probe=probe, cache=cache, key="k") == RepackChoice(False, "--cpu-repack off")
    assert probe.calls == 0


@pytest.mark.parametrize("cpu", [AVX2, ARM])
def test_auto_keeps_repacking_where_there_is_no_amx(tmp_path: Path, cpu: CpuInfo) -> None:
    probe = Probe(ProbeResult("crashed", "SIGSEGV"))
    choice = choose("auto", cpu, probe=probe, cache=VerdictCache(tmp_path / "v.json"), key="k")
    assert choice.enabled and probe.calls == 0
    assert choice.banner() == "cpu repack: on (no AMX on this CPU, where repacking is safe)"


def test_auto_on_amx_turns_repacking_off_when_the_probe_dies_and_remembers(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "v.json")
    probe = Probe(ProbeResult("crashed", "SIGSEGV"))
    choice = choose("auto", AMX, probe=probe, cache=cache, key="k")
    assert choice.banner() == "cpu repack: off (AMX probe crashed (SIGSEGV); --cpu-repack on to force)"
    again = choose("auto", AMX, probe=probe, cache=VerdictCache(tmp_path / "v.json"), key="k")
    assert probe.calls == 1 and not again.enabled and again.reason.endswith("; cached")
    # Another machine, llama-cpp-python version or model file is another key: probed anew.
    choose("auto", AMX, probe=probe, cache=cache, key="other")
    assert probe.calls == 2


def test_auto_on_amx_keeps_repacking_when_the_probe_passes(tmp_path: Path) -> None:
    probe = Probe(ProbeResult("passed", ""))
    cache = VerdictCache(tmp_path / "v.json")
    assert choose("auto", AMX, probe=probe, cache=cache, key="k") == RepackChoice(True, "AMX probe passed")
    assert choose("auto", AMX, probe=probe, cache=cache, key="k").enabled and probe.calls == 1


def test_auto_keeps_repacking_off_where_runs_decode_together(tmp_path: Path) -> None:
    # Batched decoding (llm/batch.py) needs the same kernel for one row as for many; no probe is needed then.
    probe = Probe(ProbeResult("passed", ""))
    cache = VerdictCache(tmp_path / "v.json")
    for cpu in (AMX, AVX2):
        assert choose("auto", cpu, probe=probe, cache=cache, key="k", parallel=4) == RepackChoice(False, BATCHED)
    assert probe.calls == 0
    assert choose("on", AVX2, probe=probe, cache=cache, key="k", parallel=4).enabled


def test_a_probe_that_cannot_tell_is_safe_and_not_remembered(tmp_path: Path) -> None:
    probe = Probe(ProbeResult("error", "the model could not be loaded: bad file"))
    cache = VerdictCache(tmp_path / "v.json")
    assert not choose("auto", AMX, probe=probe, cache=cache, key="k").enabled
    choose("auto", AMX, probe=probe, cache=cache, key="k")
    assert probe.calls == 2


def test_a_corrupt_cache_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text("{not json")
    probe = Probe(ProbeResult("passed", ""))
    assert choose("auto", AMX, probe=probe, cache=VerdictCache(tmp_path / "v.json"), key="k").enabled


def test_cpu_info_from_proc_cpuinfo(tmp_path: Path) -> None:
    text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 amx_bf16 amx_tile amx_int8\n"
    (tmp_path / "cpuinfo").write_text(text + text.replace(": 0", ": 1"))
    cpu = CpuInfo.read(tmp_path / "cpuinfo")
    assert cpu.model == "Intel(R) Xeon(R) Processor" and cpu.has_amx and "avx2" in cpu.flags
    assert not CpuInfo.read(tmp_path / "missing").has_amx


def test_the_key_follows_cpu_version_and_model_file(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    key = verdict_key(AMX, model, "0.3.36")
    assert key == verdict_key(AMX, model, "0.3.36")
    assert key != verdict_key(AVX2, model, "0.3.36") != verdict_key(AMX, model, "0.3.37")
    os.utime(model, ns=(1, 1))
    assert key != verdict_key(AMX, model, "0.3.36")


# The probe itself: a real throwaway process, dying for real.
def test_the_probe_reports_a_child_that_dies(tmp_path: Path) -> None:
    options = ModelOptions(n_ctx=256)
    model = tmp_path / "m.gguf"
    assert probe_repack(model, options, loader="faulty_models:segfault_at_load") == ProbeResult("crashed", "SIGSEGV")
    assert probe_repack(model, options, loader="faulty_models:abort_at_load") == ProbeResult("crashed", "SIGABRT")
    assert probe_repack(model, options, loader="faulty_models:counting") == ProbeResult("passed", "")
    assert probe_repack(model, options, loader="faulty_models:error_at_load").outcome == "error"


@pytest.mark.model  # probes the embedded model: a load of it in a child, on a CPU with AMX
def test_the_real_probe_decides_on_this_machine(tmp_path: Path) -> None:
    # Whatever this CPU is, auto decides without crashing this process, and the second start reads the cache.
    model = default_model()
    assert model is not None
    choice, cache, key = decide_repack(model.path, ModelOptions(n_ctx=256, n_threads=2), tmp_path)
    if CpuInfo.read().has_amx:
        assert choice.reason in ("AMX probe passed", "AMX probe crashed (SIGSEGV); --cpu-repack on to force")
        assert cache.get(key) == choice
        assert decide_repack(model.path, ModelOptions(n_ctx=256, n_threads=2), tmp_path)[0].reason.endswith("cached")
    else:
        assert choice == RepackChoice(True, "no AMX on this CPU, where repacking is safe")


@pytest.mark.model  # loads the embedded model itself
def test_auto_turns_repacking_off_after_a_crash_with_it_on(tmp_path: Path) -> None:
    # A verdict of "on" that turns out wrong (here: planted) is corrected by the first crash, and remembered.
    model = default_model()
    assert model is not None
    options = ModelOptions(n_ctx=512, n_threads=2, kv_states=0)
    _, cache, key = decide_repack(model.path, options, tmp_path)
    cache.put(key, RepackChoice(True, "AMX probe passed"))
    backend, _ = open_backend(model, options, cache_dir=tmp_path)
    try:
        if CpuInfo.read().has_amx and backend.cpu_repack:
            pytest.fail("a repack-on child loaded on an AMX CPU: the planted verdict was not corrected")
        if backend.cpu_repack:  # it loads with repacking on (no AMX crash here): make it die, as a crash would
            pid = backend.pid
            assert pid is not None
            os.kill(pid, signal.SIGSEGV)
            prompt = backend.encode_message("user", "Hi") + backend.generation_prefix()
            with pytest.raises(ModelCrashed):
                list(backend.generate(prompt, Sampling(temperature=0.0, max_tokens=4)))
        assert not backend.cpu_repack
        verdict = cache.get(key)
        assert verdict is not None and not verdict.enabled and "crashed with repacking on (SIGSEGV)" in verdict.reason
        prompt = backend.encode_message("user", "Hi") + backend.generation_prefix()
        assert any(isinstance(i, Piece) for i in backend.generate(prompt, Sampling(temperature=0.0, max_tokens=4)))
    finally:
        backend.close()
