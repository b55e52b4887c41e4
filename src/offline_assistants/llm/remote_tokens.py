"""The tokenizer a remote model server's prompts are counted with, so truncation and budgets stay exact.

Either the server's own, through its tokenize endpoint (`RemoteTokenizer`: vLLM's and llama-server's
`/tokenize`, llama-cpp-python's `/extras/tokenize`), or a local file given with `--tokenizer` (`open_tokenizer`):
a GGUF (its vocabulary only, llm/llama.py) or a Hugging Face `tokenizer.json`, whose `tokenizer_config.json` next
to it gives the chat template. The chat template comes from the file, else from the server (llama-server
publishes it at /props), else it is the ChatML stand-in of llm/template.py, with a warning.

Every tokenizer here is a llm/tokens.py `Tokenizer`: the TemplateEncoder methods plus `detokenize`, for a server
that takes only text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from offline_assistants.llm import defaults
from offline_assistants.llm.backend import ModelError
from offline_assistants.llm.remote_probe import Kind
from offline_assistants.llm.template import ChatTemplate, TemplateEncoder
from offline_assistants.llm.tokens import Tokenizer
from offline_assistants.llm.toolcalls import detect_native
from offline_assistants.llm.upstream import Upstream

log = logging.getLogger(__name__)
# Strings in a chat template that may be special tokens: <|im_start|>, <s>, </s>, [INST], <start_of_turn>...
_SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>|</?[A-Za-z_]{1,24}>|\[/?[A-Z_]{2,24}\]|<[a-z_]{1,40}>")
CHATML_WARNING = ("the chat template is the ChatML stand-in: the server does not publish its model's template; "
                  "give --tokenizer FILE (the model's GGUF or tokenizer.json) to use the model's own")


class RemoteTokenizer(TemplateEncoder):
    """Tokenize and detokenize through the server's own endpoints. One HTTP call per message, made when the
    message is stored (as a local tokenizer is), never per run."""

    local = False

    def __init__(self, upstream: Upstream, kind: Kind, model: str, *, chat_template: str | None = None,
                 bos_token: str = "", eos_token: str = "") -> None:
        self.upstream = upstream
        self.kind = kind
        self.model = model
        self.name = model
        self.path = Path(model)
        self.template = ChatTemplate(chat_template, bos_token=bos_token, eos_token=eos_token)
        if not self.template.native:
            log.warning("%s", CHATML_WARNING)
        # What the server puts before any text it tokenizes (a BOS, for models that want one): part of a prompt,
        # never of a message.
        self._strip = 0
        added = self._tokenize("", special=True, add_special=True)
        self.bos_id: int | None = added[0] if added else None
        self._strip = len(added) if kind == "llama-cpp-python" else 0  # it always adds them: cut them off again
        self.specials = self._specials() if kind == "llama-cpp-python" else {}
        digest = hashlib.sha256(f"{kind}\0{model}\0{self.template.source}".encode())
        digest.update(repr(self.tokenize("Hello, world! 12345 <|x|>")).encode())
        self.tokenizer_key = "remote-" + digest.hexdigest()[:16]
        self.native_tool_format: str | None = detect_native(self.template.source) if self.template.native else None
        self.sampling_defaults = defaults.for_model(Path(model), model, {})

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._tokenize(text, special=special, add_special=False)

    def _tokenize(self, text: str, *, special: bool, add_special: bool) -> list[int]:
        if self.kind == "llama-server":
            reply = self.upstream.post("/tokenize", {"content": text, "add_special": add_special,
                                                     "parse_special": special}, root=True)
        elif self.kind == "vllm":
            reply = self.upstream.post("/tokenize", {"model": self.model, "prompt": text,
                                                     "add_special_tokens": add_special}, root=True)
        else:  # llama-cpp-python: special tokens always parsed, the model's BOS always added
            reply = self.upstream.post("/extras/tokenize", {"input": text, "model": self.model}, root=True)
        tokens = [int(t if isinstance(t, int) else t["id"]) for t in reply["tokens"]]
        if not add_special and self.kind == "llama-cpp-python":
            tokens = tokens[self._strip:]
        return tokens

    def _specials(self) -> dict[int, str]:
        """The special tokens of the template, by id: llama-cpp-python's detokenize leaves them out of its text
        (`special=False`), so detokenize() puts them back itself."""
        found: dict[int, str] = {}
        candidates = set(_SPECIAL.findall(self.template.source)) | set(self.template.special_tokens())
        for text in sorted(c for c in candidates if c):
            ids = self.tokenize(text)
            if len(ids) == 1 and self._detokenize_plain(ids) == "":
                found[ids[0]] = text
        return found

    def _detokenize_plain(self, tokens: list[int]) -> str:
        if not tokens:
            return ""
        if self.kind == "llama-server":
            return str(self.upstream.post("/detokenize", {"tokens": tokens}, root=True)["content"])
        if self.kind == "vllm":
            return str(self.upstream.post("/detokenize", {"model": self.model, "tokens": tokens}, root=True)["prompt"])
        return str(self.upstream.post("/extras/detokenize", {"tokens": tokens, "model": self.model},
                                      root=True)["text"])

    def detokenize(self, tokens: list[int]) -> str:
        """The text of a token list, special tokens included: runs between special tokens go to the server."""
        parts: list[str] = []
        run: list[int] = []
        for token in tokens:
            special = self.specials.get(token)
            if special is None:
                run.append(token)
                continue
            parts.append(self._detokenize_plain(run))
            parts.append(special)
            run = []
        parts.append(self._detokenize_plain(run))
        return "".join(parts)


class HFTokenizer(TemplateEncoder):
    """A Hugging Face tokenizer.json (what a vLLM model directory holds), with the chat template, BOS and EOS of
    the tokenizer_config.json beside it."""

    local = True

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.path = Path(path)
        self.name = self.path.parent.name or self.path.stem
        try:
            self._tok = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # noqa: BLE001 - the library raises its own exception type
            raise ModelError(f"could not load the tokenizer {self.path}: {exc}") from exc
        config_path = self.path.with_name("tokenizer_config.json")
        config: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}
        bos, eos = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
        template = config.get("chat_template")
        if isinstance(template, list):  # the named-template form: take the default one
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        self.template = ChatTemplate(template if isinstance(template, str) else None, bos_token=bos, eos_token=eos)
        if not self.template.native:
            log.warning("%s has no chat template: %s", config_path, CHATML_WARNING)
        bos_id = self._tok.token_to_id(bos) if bos else None
        self.bos_id = bos_id if config.get("add_bos_token", False) else None
        digest = hashlib.sha256(self.template.source.encode() + self.path.read_bytes())
        self.tokenizer_key = "hf-" + digest.hexdigest()[:16]
        self.native_tool_format: str | None = detect_native(self.template.source) if self.template.native else None
        self.sampling_defaults = defaults.for_model(self.path, self.name, {})

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        # tokenizers always matches added (special) tokens in text; `special` cannot turn that off here.
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def detokenize(self, tokens: list[int]) -> str:
        return str(self._tok.decode(tokens, skip_special_tokens=False))


def _token_text(value: Any) -> str:
    if isinstance(value, dict):  # {"content": "<s>", "lstrip": false, ...}
        value = value.get("content")
    return value if isinstance(value, str) else ""


def open_tokenizer(path: Path) -> Tokenizer:
    """--tokenizer: a GGUF's vocabulary, or a tokenizer.json (a folder holding one will do)."""
    from offline_assistants.llm.llama import LlamaTokenizer

    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ModelError(f"--tokenizer {path}: no such file")
    if path.suffix == ".gguf":
        return LlamaTokenizer(path)
    return HFTokenizer(path)
