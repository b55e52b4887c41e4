"""What a run's model calls add to its `x_details` (schemas/runs.py RunDetails): time to first token, the
generation rate, how much of each prompt the KV cache held, and the window the model saw.

`ModelCalls` measures each call (engine/model_calls.py) and the store adds it to the run in the same transaction
as the call's usage (store/runs.py add_usage), so a run resumed after requires_action keeps adding to its figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CallStats:
    """One model call, measured."""

    first_token_ms: float | None  # since the run started executing; None when the call wrote nothing
    generated_tokens: int  # tokens after the first one, over `generation_ms` (the first one waits on the prompt)
    generation_ms: float
    # The call's prompt, and how much of it the KV cache held: known only when the backend finished the call
    # (a caller that stops reading early never gets the backend's count), None then.
    prompt_tokens: int | None
    cached_prompt_tokens: int | None
    window: dict[str, Any] | None  # the prompt's window (RunWindow's fields), when the executor chose one

    def add_to(self, details: dict[str, Any]) -> dict[str, Any]:
        out = dict(details)
        out["model_calls"] = int(out.get("model_calls", 0)) + 1
        if out.get("time_to_first_token_ms") is None and self.first_token_ms is not None:
            out["time_to_first_token_ms"] = round(self.first_token_ms, 1)  # the run's first token, kept once
        out["generated_tokens"] = int(out.get("generated_tokens", 0)) + self.generated_tokens
        out["generation_ms"] = round(float(out.get("generation_ms", 0.0)) + self.generation_ms, 1)
        if self.prompt_tokens is not None and self.cached_prompt_tokens is not None:
            out["prompt_tokens"] = int(out.get("prompt_tokens", 0)) + self.prompt_tokens
            out["cached_prompt_tokens"] = int(out.get("cached_prompt_tokens", 0)) + self.cached_prompt_tokens
        if self.window is not None:
            out["window"] = self.window  # the latest call's: what the model saw last
        return out
