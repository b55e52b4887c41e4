"""A remote model server behind the same ModelBackend: vLLM, llama.cpp's llama-server or llama-cpp-python's server,
through their OpenAI-style `/v1/completions` (`serve --backend-url http://gpu-box:8000/v1`).

The engine is unchanged: it counts and builds prompts as token lists with the server's own tokenizer (or
--tokenizer, llm/remote_tokens.py), so truncation and budgets stay exact. What differs per server, found out at
start-up (llm/remote_probe.py):

- **Prompts.** vLLM and llama-server take token ids: the model sees exactly the tokens we counted, and the
  server's prefix cache reuses a thread's stable prefix the way the local KV cache does. llama-cpp-python's server
  takes only text: the prompt is rendered back to text (special tokens included) and the server tokenizes it
  again, which may split a few places differently from our count.
- **Constraints** (choice, JSON schema, code block) become the server's own structured-output parameters: GBNF
  `grammar` for the llama.cpp servers (the very grammar the local backend uses, llm/gbnf.py), vLLM's
  `structured_outputs` (or `guided_*`).
- **Token ids while streaming** come with each event: vLLM's logprobs with `return_tokens_as_token_ids`,
  llama-server's `n_probs` entries. llama-cpp-python's events carry only text: each piece gets the --tokenizer's
  id for its text, or a stand-in, and the Finish carries the ids of the whole reply.
- **Scores** for the tool decision: prompt log-probabilities (`echo` + `logprobs`) where the server has them;
  else each option's own tokens are generated under a grammar of exactly those token ids, and their
  log-probabilities (from the model's distribution before the grammar) are summed: llama-server refuses echo,
  and llama-cpp-python's echo costs seconds per option (it sorts the vocabulary in Python per prompt token).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from typing import Any, Literal

from offline_assistants.llm.backend import (
    AnyJson,
    Choice,
    CodeBlock,
    Constraint,
    Finish,
    JsonSchema,
    ModelError,
    Piece,
    Sampling,
    Stream,
)
from offline_assistants.llm.gbnf import compile_constraint
from offline_assistants.llm.llama_params import SEED
from offline_assistants.llm.remote_probe import ServerInfo
from offline_assistants.llm.tokens import TokenizedBackend, Tokenizer
from offline_assistants.llm.upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)
# A code block's body as a regular expression, for vLLM (lines without backticks, then the closing fence): the
# same language as gbnf.CODE_GRAMMAR.
CODE_REGEX = r"[^\n`]*(\n[^\n`]*)*\n```"


def constraint_body(style: str, constraint: Constraint) -> dict[str, Any]:
    """A constraint as the request parameters of a server's structured outputs."""
    if style == "gbnf":
        return {"grammar": compile_constraint(constraint)}
    if isinstance(constraint, Choice):
        spec: tuple[str, Any] = ("choice", list(constraint.options))
    elif isinstance(constraint, JsonSchema) and constraint.schema and (
            constraint.schema.get("type") != "object" or constraint.schema.get("properties")):
        spec = ("json", constraint.schema)
    elif isinstance(constraint, JsonSchema | AnyJson):
        spec = ("json_object", True) if style == "vllm-structured" else ("json", {"type": "object"})
    elif isinstance(constraint, CodeBlock):
        spec = ("regex", CODE_REGEX)
    else:
        raise TypeError(f"no structured output for {constraint!r}")
    if style == "vllm-structured":
        return {"structured_outputs": {spec[0]: spec[1]}}
    return {f"guided_{spec[0]}": spec[1]}


def token_grammar(tokens: list[int]) -> str:
    """GBNF that allows exactly these token ids, in order (llama.cpp's token syntax)."""
    return "root ::= " + " ".join(f"<[{t}]>" for t in tokens)


def _stand_in(text: str) -> int:
    """A piece's id when only its text is known: negative, so it is never taken for a real token, and the same
    for the same text, so the loop guard still sees repeats."""
    return -1 - (zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF)


class RemoteBackend(TokenizedBackend):
    def __init__(self, upstream: Upstream, info: ServerInfo, tokenizer: Tokenizer, *, n_ctx: int) -> None:
        super().__init__(tokenizer)
        self.upstream = upstream
        self.info = info
        # vLLM and llama-server batch: the engine may run several runs at once (engine/worker.py). llama-cpp-python's
        # server runs one request at a time, so a second run would only wait there, against the read timeout.
        self.parallel = info.kind != "llama-cpp-python"
        self.name = info.model
        self.n_ctx = n_ctx
        self.local_tokens = tokenizer.local  # --tokenizer: ids for streamed text cost nothing
        self.llama = info.kind in ("llama-server", "llama-cpp-python")

    def close(self) -> None:
        self.upstream.close()

    def describe(self) -> str:
        return f"{self.upstream.base_url}: {self.info.describe()}, context {self.n_ctx}"

    # --- requests ---
    def request_prompt(self, prompt: list[int]) -> list[int] | str:
        """The prompt as the server takes it: the ids, or their text without the leading BOS (a server that
        tokenizes text adds its BOS itself)."""
        if self.info.token_prompts:
            return prompt
        bos = self.tokenizer.bos_id
        return self.tokenizer.detokenize(prompt[1:] if bos is not None and prompt[:1] == [bos] else prompt)

    def _body(self, prompt: list[int], sampling: Sampling, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.info.model, "prompt": self.request_prompt(prompt), "max_tokens": max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p, "stream": True,
            "seed": SEED if sampling.seed is None else sampling.seed,
        }
        if sampling.presence_penalty or sampling.frequency_penalty:
            body.update(presence_penalty=sampling.presence_penalty, frequency_penalty=sampling.frequency_penalty)
        if sampling.logit_bias:
            body["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias}
        penalty = 1.0 if sampling.constraint is not None else sampling.repeat_penalty
        body["repeat_penalty" if self.llama else "repetition_penalty"] = penalty
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.constraint is not None:
            body.update(constraint_body(self.info.constraints or "gbnf", sampling.constraint))
        if self.info.kind == "vllm":
            body.update(logprobs=0, return_tokens_as_token_ids=True, stream_options={"include_usage": True})
        elif self.info.kind == "llama-server":
            body["n_probs"] = 1
        return body

    def _ids(self, choice: dict[str, Any], text: str) -> tuple[list[int], bool]:
        """The token ids of one streamed event, and whether they are the server's (False: stand-ins)."""
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            content = logprobs.get("content")
            if isinstance(content, list) and content and all("id" in c for c in content):  # llama-server
                return [int(c["id"]) for c in content], True
            tokens = logprobs.get("tokens")
            if isinstance(tokens, list) and tokens and all(str(t).startswith("token_id:") for t in tokens):  # vLLM
                return [int(str(t)[len("token_id:"):]) for t in tokens], True
        if not text:
            return [], True
        if self.local_tokens:
            return self.tokenizer.tokenize(text) or [_stand_in(text)], True
        return [_stand_in(text)], False

    # --- generation ---
    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        if len(prompt) + 1 > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        max_tokens = max(0, min(sampling.max_tokens, self.n_ctx - len(prompt)))
        if max_tokens == 0:
            yield Finish("length", 0, 0)
            return
        events = self.upstream.stream("/completions", self._body(prompt, sampling, max_tokens), cancelled)
        produced, text, exact, cached = 0, "", True, 0
        reason: Literal["stop", "length", "cancelled"] | None = None
        try:
            for event in events:
                usage = event.get("usage")
                if isinstance(usage, dict):
                    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
                choices = event.get("choices") or []
                if not choices:
                    continue
                choice = choices[0]
                piece = choice.get("text") or ""
                ids, real = self._ids(choice, piece)
                exact = exact and real
                for i, token in enumerate(ids):
                    produced += 1
                    yield Piece(token, piece if i == 0 else "")
                text += piece
                if choice.get("finish_reason"):
                    reason = "length" if choice["finish_reason"] == "length" else "stop"
                    if self.info.kind != "vllm":
                        break  # vLLM's usage comes in one more event
                if cancelled():
                    reason = "cancelled"
                    break
                if produced >= max_tokens and reason is None:
                    reason = "length"
                    break
        finally:
            events.close()  # closes the HTTP response: a server still generating stops
        if reason is None:
            if cancelled():
                reason = "cancelled"
            else:
                raise UpstreamError(f"the model server at {self.upstream.url('/completions')} ended the stream "
                                    "without a finish reason (llama-cpp-python's server does this to a stream when "
                                    "another request arrives, unless started with --interrupt_requests False)")
        tokens = tuple(self.tokenizer.tokenize(text)) if not exact else None
        yield Finish(reason, len(prompt) - min(cached, len(prompt)), len(tokens) if tokens is not None else produced,
                     tokens=tokens)

    # --- scores for the tool decision ---
    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        if not prompt or any(not option for option in options):
            raise ModelError("score needs a prompt and non-empty options")
        if len(prompt) + max(len(o) for o in options) > self.n_ctx:
            raise ModelError(f"prompt of {len(prompt)} tokens does not fit the context of {self.n_ctx}")
        if self.info.scoring == "forced":
            return [self._forced(prompt, option) for option in options]
        if self.info.token_prompts:
            return self._echo_tokens(prompt, options)
        return [self._echo_text(prompt, option) for option in options]

    def _complete(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        reply = self.upstream.post("/completions", {"model": self.info.model, "temperature": 0.0, **body})
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or not choices:
            raise UpstreamError(f"the model server at {self.upstream.url('/completions')} returned no choices")
        return sorted(choices, key=lambda c: int(c.get("index", 0)))

    def _echo_tokens(self, prompt: list[int], options: list[list[int]]) -> list[float]:
        """All options in one request (a batch of prompts), each scored from its echoed prompt log-probabilities."""
        choices = self._complete({"prompt": [prompt + option for option in options], "max_tokens": 1, "echo": True,
                                  "logprobs": 0})
        scores = []
        for choice, option in zip(choices, options):
            logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or []
            scores.append(float(sum(lp or 0.0 for lp in logprobs[len(prompt):len(prompt) + len(option)])))
        return scores

    def _echo_text(self, prompt: list[int], option: list[int]) -> float:
        """A text-prompt server tokenizes prompt and option itself, and llama-cpp-python's echo leaves special
        tokens out of its texts and offsets: the option is the echoed tokens that cover its characters, counted
        back from the end of the prompt (a token across the boundary counts with the option)."""
        head = self.request_prompt(prompt)
        assert isinstance(head, str)
        wanted = self.tokenizer.detokenize(option)
        choice = self._complete({"prompt": head + wanted, "max_tokens": 1, "echo": True, "logprobs": 0})[0]
        logprobs = choice.get("logprobs") or {}
        pieces, values = logprobs.get("tokens") or [], logprobs.get("token_logprobs") or []
        generated = 1 if choice.get("finish_reason") == "length" else 0  # an end token is not echoed
        total, covered = 0.0, 0
        for piece, value in reversed(list(zip(pieces, values))[: len(pieces) - generated]):
            if covered >= len(wanted):
                break
            covered += len(piece)
            total += float(value or 0.0)
        return total

    def _forced(self, prompt: list[int], option: list[int]) -> float:
        """The option's own tokens generated under a grammar of exactly those token ids (llama.cpp's `<[id]>`), at
        temperature 0: the sum of the log-probabilities the server reports for them, which are the model's own
        before the grammar (llama-server's `n_probs`, llama-cpp-python's `logprobs`). A grammar of the option's
        *text* is no good: greedy under it takes whatever split of the text scores best token by token, such as
        " " then "f", and the sum is of another path."""
        body: dict[str, Any] = {"prompt": self.request_prompt(prompt), "max_tokens": len(option),
                                "grammar": token_grammar(option)}
        body.update({"n_probs": 1} if self.info.kind == "llama-server" else {"logprobs": 0})
        logprobs = self._complete(body)[0].get("logprobs") or {}
        if self.info.kind == "llama-server":
            content = logprobs.get("content") or []
            wrote: Any = [int(c.get("id", -1)) for c in content]
            values = [float(c["logprob"]) for c in content]
            kept = wrote == option
        else:  # llama-cpp-python names no ids: the tokens' texts must be the option's, one for one
            wrote = logprobs.get("tokens") or []
            values = [float(v) for v in logprobs.get("token_logprobs") or [] if v is not None]
            kept = len(wrote) == len(values) == len(option) and "".join(wrote) == self.tokenizer.detokenize(option)
        if not kept:
            raise UpstreamError(f"the model server at {self.upstream.url('/completions')} did not keep to a grammar "
                                f"of token ids (wrote {wrote!r} for {option})")
        return float(sum(values))
