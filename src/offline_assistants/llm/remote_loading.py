"""From `serve --backend-url URL [--backend-model NAME] [--backend-api-key KEY] [--tokenizer FILE]` to a
RemoteBackend: connect, choose the model, find its tokenizer, probe what the server supports (llm/remote_probe.py)
and refuse to start, saying what to change, where the guarantees could not hold."""

from __future__ import annotations

import logging
from pathlib import Path

from offline_assistants.llm.backend import ModelError
from offline_assistants.llm.remote import RemoteBackend
from offline_assistants.llm.remote_probe import choose_model, detect_kind, probe, probe_interrupts
from offline_assistants.llm.remote_tokens import RemoteTokenizer, open_tokenizer
from offline_assistants.llm.upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)
TOKENIZER_HINT = "give --tokenizer PATH: the served model's GGUF, or its tokenizer.json (or the folder holding it)"


def connect(url: str, *, model: str | None = None, api_key: str | None = None, tokenizer: Path | None = None,
            n_ctx: int = 4096, read_timeout_s: float | None = None) -> RemoteBackend:
    """The remote backend, probed. Raises ModelError with the reason when the server cannot serve runs."""
    upstream = Upstream(url, api_key=api_key, **({"read_timeout_s": read_timeout_s} if read_timeout_s else {}))
    try:
        return _connect(upstream, model, tokenizer, n_ctx)
    except BaseException:
        upstream.close()
        raise


def _connect(upstream: Upstream, model: str | None, tokenizer_path: Path | None, n_ctx: int) -> RemoteBackend:
    kind, props = detect_kind(upstream)
    name, entry = choose_model(upstream, model)
    if tokenizer_path is not None:
        tokenizer = open_tokenizer(tokenizer_path)
    else:
        try:
            tokenizer = RemoteTokenizer(upstream, kind, name, chat_template=props.get("chat_template") or None,
                                        bos_token=str(props.get("bos_token") or ""),
                                        eos_token=str(props.get("eos_token") or ""))
        except UpstreamError as exc:
            if exc.status is None:
                raise
            raise ModelError(f"the {kind} server at {upstream.base_url} has no working tokenize endpoint "
                             f"({exc}): token counts would not be exact; {TOKENIZER_HINT}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"the {kind} server at {upstream.base_url} answered its tokenize endpoint in a form "
                             f"we do not know ({exc!r}); {TOKENIZER_HINT}") from exc
    info = probe(upstream, kind, props, name, entry, tokenizer.tokenize)
    if kind == "llama-cpp-python" and probe_interrupts(upstream, name):
        raise ModelError(f"the llama-cpp-python server at {upstream.base_url} cuts a reply short whenever another "
                         "request arrives: start it with --interrupt_requests False")
    context = info.n_ctx or n_ctx
    return RemoteBackend(upstream, info, tokenizer, n_ctx=context)
