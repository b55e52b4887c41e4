"""What a remote model server is and can do, found out once at start-up by asking it.

- **Kind**: llama.cpp's `llama-server` answers `GET /props`; vLLM answers `GET /version`; llama-cpp-python's
  server answers `POST /extras/tokenize`. Each has its own tokenize endpoint and its own structured-output
  parameters, and the kind says which.
- **Prompts**: a one-token completion with a token-id prompt. vLLM and llama-server take it (the model then sees
  exactly the tokens we counted); llama-cpp-python's server refuses it, and gets the prompt as text.
- **Constraints**: a completion held to a choice of two nonsense words ("zqxj" | "vvkw") at temperature 0; only a
  server that enforces the constraint can answer one of them. llama.cpp servers take GBNF (`grammar`), vLLM its
  `structured_outputs` (or, before 0.10, `guided_*`). A server that enforces none is refused: tool calls and
  response formats could no longer be guaranteed to parse.
- **Scoring** (the tool decision's option log-probabilities): the llama.cpp servers score an option by generating
  exactly its tokens under a grammar of token ids (`<[id]>`), reading the model's log-probability of each
  (llama-server's `n_probs`, llama-cpp-python's `logprobs`); vLLM returns the prompt's log-probabilities with
  `echo` and `logprobs` (llm/remote.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from offline_assistants.llm.backend import ModelError
from offline_assistants.llm.upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

Kind = Literal["llama-server", "vllm", "llama-cpp-python"]
ConstraintStyle = Literal["gbnf", "vllm-structured", "vllm-guided"]
ScoreStyle = Literal["echo", "forced"]
PROBE_WORDS = ("zqxj", "vvkw")
PROBE_PROMPT = "Pick a word:"
PROBE_OPTION = " zqxj vvkw"
KINDS: tuple[Kind, ...] = ("llama-server", "vllm", "llama-cpp-python")


@dataclass(frozen=True)
class ServerInfo:
    kind: Kind
    model: str  # the model name requests carry
    n_ctx: int | None  # the context the server was started with, where it says
    token_prompts: bool = False
    constraints: ConstraintStyle | None = None
    scoring: ScoreStyle | None = None
    chat_template: str | None = None  # llama-server publishes its model's template
    bos_token: str = ""
    eos_token: str = ""

    def describe(self) -> str:
        prompts = "token-id prompts" if self.token_prompts else "text prompts (re-tokenized by the server)"
        return (f"{self.kind}, model {self.model!r}, {prompts}, constraints via {self.constraints}, "
                f"decision scores via {self.scoring}")


def detect_kind(upstream: Upstream) -> tuple[Kind, dict[str, Any]]:
    """The server's kind, and what its kind-specific endpoint said (llama-server's props)."""
    props = upstream.try_get("/props", root=True)
    if isinstance(props, dict) and "default_generation_settings" in props:
        return "llama-server", props
    version = upstream.try_get("/version", root=True)
    if isinstance(version, dict) and "version" in version:
        return "vllm", version
    tokens = upstream.try_post("/extras/tokenize", {"input": "a"}, root=True)
    if isinstance(tokens, dict) and "tokens" in tokens:
        return "llama-cpp-python", {}
    raise ModelError(f"the server at {upstream.base_url} is none of {', '.join(KINDS)}: it answers neither "
                     "GET /props (llama-server), GET /version (vLLM) nor POST /extras/tokenize (llama-cpp-python); "
                     "a server of another kind has no tokenizer endpoint and no constraints we can drive")


def choose_model(upstream: Upstream, wanted: str | None) -> tuple[str, dict[str, Any]]:
    """The model to name in requests (--backend-model, else the server's first) and its /v1/models entry."""
    listed = upstream.get("/models")
    entries = [m for m in (listed.get("data") or []) if isinstance(m, dict) and "id" in m] \
        if isinstance(listed, dict) else []
    if not entries:
        raise ModelError(f"the server at {upstream.base_url} lists no model at GET /v1/models")
    if wanted is None:
        return str(entries[0]["id"]), entries[0]
    for entry in entries:
        if entry["id"] == wanted:
            return wanted, entry
    raise ModelError(f"the server at {upstream.base_url} serves no model {wanted!r}; it serves: "
                     + ", ".join(repr(m["id"]) for m in entries))


def context_of(kind: Kind, entry: dict[str, Any], props: dict[str, Any]) -> int | None:
    for value in (entry.get("max_model_len"), (entry.get("meta") or {}).get("n_ctx"),
                  (props.get("default_generation_settings") or {}).get("n_ctx")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def probe_token_prompts(upstream: Upstream, model: str, tokens: list[int]) -> bool:
    body = {"model": model, "prompt": tokens, "max_tokens": 1, "temperature": 0.0}
    try:
        upstream.post("/completions", body)
        return True
    except UpstreamError as exc:
        if exc.status is None or exc.status == 429:
            raise
        log.info("the server refused a token-id prompt (%s): prompts go as text", exc)
        return False


def constraint_params(style: ConstraintStyle, options: tuple[str, ...], gbnf: str) -> dict[str, Any]:
    if style == "gbnf":
        return {"grammar": gbnf}
    if style == "vllm-structured":
        return {"structured_outputs": {"choice": list(options)}}
    return {"guided_choice": list(options)}


def probe_constraints(upstream: Upstream, kind: Kind, model: str, prompt: Any) -> ConstraintStyle | None:
    from offline_assistants.llm.gbnf import choice_grammar

    styles: list[ConstraintStyle] = ["gbnf"] if kind != "vllm" else ["vllm-structured", "vllm-guided"]
    for style in styles:
        body = {"model": model, "prompt": prompt, "max_tokens": 8, "temperature": 0.0,
                **constraint_params(style, PROBE_WORDS, choice_grammar(list(PROBE_WORDS)))}
        reply = upstream.try_post("/completions", body)
        text = _text(reply)
        if text is not None and text.strip() in PROBE_WORDS:
            return style
        log.info("constraint style %s not enforced (the server wrote %r)", style, text)
    return None


def probe_scoring(upstream: Upstream, kind: Kind, model: str, prompt: Any, option: list[int]) -> ScoreStyle | None:
    """forced on the llama.cpp servers, where a grammar of token ids (llama.cpp's `<[id]>`) is kept and the
    tokens' log-probabilities are reported; else echo, where the server returns prompt log-probabilities; else
    None. `option`: the token ids of PROBE_OPTION."""
    if kind != "vllm":
        grammar = "root ::= " + " ".join(f"<[{t}]>" for t in option)
        body = {"model": model, "prompt": prompt, "max_tokens": len(option), "temperature": 0.0, "grammar": grammar,
                **({"n_probs": 1} if kind == "llama-server" else {"logprobs": 0})}
        logprobs = _choice(upstream.try_post("/completions", body)).get("logprobs") or {}
        content = logprobs.get("content")
        if kind == "llama-server" and isinstance(content, list) and [c.get("id") for c in content] == option:
            return "forced"
        if kind == "llama-cpp-python" and "".join(logprobs.get("tokens") or []) == PROBE_OPTION:
            return "forced"
    body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1}
    logprobs = _choice(upstream.try_post("/completions", body)).get("logprobs")
    if isinstance(logprobs, dict) and len(logprobs.get("token_logprobs") or []) >= 2:
        return "echo"
    return None


def _choice(reply: Any) -> dict[str, Any]:
    if reply is None:
        return {}
    try:
        choice = reply["choices"][0]
    except (TypeError, KeyError, IndexError):
        return {}
    return choice if isinstance(choice, dict) else {}


def _text(reply: Any) -> str | None:
    text = _choice(reply).get("text")
    return text if isinstance(text, str) else None


def probe(upstream: Upstream, kind: Kind, props: dict[str, Any], model: str, entry: dict[str, Any],
          tokenize: Any) -> ServerInfo:
    """The features above, for a server whose kind and model are known. `tokenize(text) -> ids` is the tokenizer
    chosen for the server (its own or --tokenizer), for the token-id probe."""
    n_ctx = context_of(kind, entry, props)
    token_prompts = probe_token_prompts(upstream, model, tokenize(PROBE_PROMPT)) if kind != "llama-cpp-python" \
        else False  # its request schema is `prompt: str | list[str]`: no probe needed to know
    prompt: Any = tokenize(PROBE_PROMPT) if token_prompts else PROBE_PROMPT
    constraints = probe_constraints(upstream, kind, model, prompt)
    if constraints is None:
        raise ModelError(f"the server at {upstream.base_url} ({kind}) does not enforce output constraints (a "
                         f"choice of {PROBE_WORDS} was not kept): tool-call arguments and response formats could not "
                         "be guaranteed to parse")
    scoring = probe_scoring(upstream, kind, model, prompt, tokenize(PROBE_OPTION))
    if scoring is None:
        raise ModelError(f"the server at {upstream.base_url} ({kind}) returns no prompt log-probabilities (echo "
                         "with logprobs) and keeps no grammar of token ids with n_probs (llama.cpp's <[id]>, in "
                         "llama-server since 2025): tool decisions cannot be scored")
    return ServerInfo(kind=kind, model=model, n_ctx=n_ctx, token_prompts=token_prompts, constraints=constraints,
                      scoring=scoring, chat_template=props.get("chat_template") or None,
                      bos_token=str(props.get("bos_token") or ""), eos_token=str(props.get("eos_token") or ""))


def probe_interrupts(upstream: Upstream, model: str) -> bool:
    """Whether llama-cpp-python's server cuts a stream short when another request arrives (its
    `interrupt_requests`, on by default): a stream is opened, a tokenize call is sent while it runs, and the
    stream is read to its end. Runs in parallel, and messages stored while a run generates, need it off."""
    import threading

    result: list[Any] = []
    events = upstream.stream("/completions", {"model": model, "prompt": PROBE_PROMPT, "max_tokens": 12,
                                              "temperature": 0.0, "stream": True}, lambda: False)
    finished = False
    other: threading.Thread | None = None
    try:
        for event in events:
            if other is None:
                other = threading.Thread(target=lambda: result.append(
                    upstream.try_post("/extras/tokenize", {"input": "a"}, root=True)), daemon=True)
                other.start()
            if (_choice(event).get("finish_reason")) is not None:
                finished = True
    finally:
        events.close()
        if other is not None:
            other.join(upstream.read_timeout_s)
    return not finished
