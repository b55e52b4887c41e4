"""Model loaders for the model-process tests (llm/child.py imports them by name in the child process): models
that die at load, refuse to load, or generate slowly and predictably so cancel and crash paths can be driven.
A loader returns what the model process steps (llm/stepping.py): `counting` wraps its model in OneAtATime."""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from offline_assistants.llm.backend import Finish, ModelError, Piece, Sampling
from offline_assistants.llm.stepping import OneAtATime


def abort_at_load(**_options: Any) -> None:
    os.abort()  # what a GGML_ASSERT does


def segfault_at_load(**_options: Any) -> None:
    ctypes.string_at(0)  # a real SIGSEGV: a read of address 0


def error_at_load(**_options: Any) -> None:
    raise ModelError("not a GGUF file")


def counting(**options: Any) -> OneAtATime:
    return OneAtATime(Counting(**options))


class Counting:
    """Writes "0 1 2 ..." one token every `delay_s`; `segfault_after` tokens into a call it really segfaults."""

    def __init__(self, delay_s: float = 0.005, segfault_after: int | None = None, **_options: Any) -> None:
        self.delay_s = delay_s
        self.segfault_after = segfault_after
        self.calls = 0

    def info(self) -> dict[str, Any]:
        return {"n_ctx": 1024, "gpu_layers": 0, "pid": os.getpid()}

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Iterator[Piece | Finish]:
        self.calls += 1
        for i in range(sampling.max_tokens):
            if self.segfault_after is not None and i == self.segfault_after:
                ctypes.string_at(0)
            time.sleep(self.delay_s)
            yield Piece(i, f"{i} ")
            if cancelled():
                yield Finish("cancelled", len(prompt), i + 1)
                return
        yield Finish("length", len(prompt), sampling.max_tokens)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        raise ModelError("the counting model does not score")
