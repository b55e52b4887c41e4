"""How every llama.cpp handle here is opened: the sampler seed, the weight-repacking switch, a quiet log while a
handle opens, whether this build offloads to a GPU. One copy for the tokenizer (llm/llama.py), the batched model
(llm/batch.py), the remote backend's seed, the embedder and the benchmarks."""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator
from typing import Any

# llama-cpp-python reads seed 0 as "no seed" (`seed or LLAMA_DEFAULT_SEED`, and that default means random): any
# other value makes each call's sampler start from the same state, so a conversation samples the same way twice.
SEED = 1234

_params_lock = threading.Lock()


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


@contextlib.contextmanager
def model_params(use_extra_bufts: bool) -> Iterator[None]:
    """`Llama(...)` has no argument for llama.cpp's weight repacking (`--no-repack`): the field lives on the
    params struct it builds from `llama_model_default_params()`. Wrap that one call while a model loads."""
    import llama_cpp.llama_cpp as raw  # the bindings module `Llama` calls them through

    bindings: Any = raw  # its functions are made by a decorator mypy cannot read
    original = bindings.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = use_extra_bufts
        return value

    with _params_lock:
        bindings.llama_model_default_params = params
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


@contextlib.contextmanager
def quiet_log() -> Iterator[None]:
    """A vocab-only handle still builds a small context, and llama.cpp then warns "n_ctx_seq (512) >
    n_ctx_train (0) -- possible training context overflow" (no weights, so no trained size): true of no model.
    Silence llama.cpp's log while the handle opens; errors still arrive as exceptions."""
    import llama_cpp
    from llama_cpp import _logger

    llama_cpp.llama_log_set(_silent_callback(), ctypes.c_void_p(0))
    try:
        yield
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def _silent(_level: int, _text: bytes, _user_data: ctypes.c_void_p) -> None:
    return None


_SILENT: Any = None


def _silent_callback() -> Any:
    global _SILENT
    if _SILENT is None:
        import llama_cpp

        _SILENT = llama_cpp.llama_log_callback(_silent)  # kept alive here: llama.cpp holds the pointer
    return _SILENT
