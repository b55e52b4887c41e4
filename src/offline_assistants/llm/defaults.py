"""How a model samples when the client does not say: values that suit the loaded model, not the API's.

The Assistants API's defaults (temperature 1, top_p 1) were tuned for large hosted models. A 135M model at
temperature 1 degenerates, never emits its end token and writes until the window is full. So when neither the
run nor the assistant sets `temperature` / `top_p`, the server samples with the model's own recommendation, and
the assistant and run objects echo the values actually used. A client that sets values gets exactly those.

Where the values come from, first match wins:
1. a sidecar file next to the GGUF, `NAME.json`: `{"temperature": 0.3, "top_p": 0.9, "repeat_penalty": 1.1}`;
2. the GGUF's own `general.sampling.temp` / `general.sampling.top_p` metadata;
3. the model cards of the models we know (below);
4. a moderate default for any other local model.
`serve --temperature / --top-p` override all of them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingDefaults:
    temperature: float = 1.0
    top_p: float = 1.0
    repeat_penalty: float = 1.0  # llama.cpp's over the last 64 tokens; not an API parameter, so always ours
    source: str = "the API's defaults"

    def override(self, temperature: float | None = None, top_p: float | None = None,
                 repeat_penalty: float | None = None) -> SamplingDefaults:
        if temperature is None and top_p is None and repeat_penalty is None:
            return self
        return replace(self, temperature=self.temperature if temperature is None else temperature,
                       top_p=self.top_p if top_p is None else top_p,
                       repeat_penalty=self.repeat_penalty if repeat_penalty is None else repeat_penalty,
                       source=f"{self.source}, overridden by the server's options")


API_DEFAULTS = SamplingDefaults()
# Model cards' recommendations; the repetition penalty was chosen on benchmarks/replies.py (see its README).
KNOWN: dict[str, SamplingDefaults] = {
    "smollm2": SamplingDefaults(0.2, 0.9, 1.1, "SmolLM2's model card (temperature 0.2, top_p 0.9)"),
    "gemma-3": SamplingDefaults(1.0, 0.95, 1.0, "Gemma 3's model card (temperature 1.0, top_p 0.95)"),
    "gemma3": SamplingDefaults(1.0, 0.95, 1.0, "Gemma 3's model card (temperature 1.0, top_p 0.95)"),
}
LOCAL_DEFAULTS = SamplingDefaults(0.7, 0.9, 1.05, "offline-assistants' default for local models")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def for_model(path: Path, name: str, metadata: dict[str, Any]) -> SamplingDefaults:
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text())
            values = {k: float(data[k]) for k in ("temperature", "top_p", "repeat_penalty") if k in data}
            return replace(LOCAL_DEFAULTS, **values, source=str(sidecar))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring %s: %s", sidecar, exc)
    temp, top_p = _number(metadata.get("general.sampling.temp")), _number(metadata.get("general.sampling.top_p"))
    if temp is not None or top_p is not None:
        return replace(LOCAL_DEFAULTS, temperature=LOCAL_DEFAULTS.temperature if temp is None else temp,
                       top_p=LOCAL_DEFAULTS.top_p if top_p is None else top_p, source="the GGUF's metadata")
    label = f"{metadata.get('general.name', '')} {name} {path.name}".lower()
    for key, defaults in KNOWN.items():
        if key in label:
            return defaults
    return LOCAL_DEFAULTS
