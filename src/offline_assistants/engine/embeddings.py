"""Embeddings (POST /v1/embeddings): texts or token ids to vectors, on the embedder file search uses.

The rules and messages are the hosted API's, as it answers today: every input non-empty, at most 2048 inputs, each
within the model's limit, 300,000 tokens in all. What differs is the model: any name a client sends maps to the one
embedder (the built-in WordLlama, or --embedding-model's GGUF) and is echoed; token ids are ids of that embedder's
own vocabulary, and usage counts its tokens.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import numpy as np

from offline_assistants.errors import InvalidRequest, TooManyTokens
from offline_assistants.retrieval.embeddings import Embedder, TokenIds, Vectors, normalise
from offline_assistants.schemas.embeddings import (
    CreateEmbeddingResponse,
    Embedding,
    EmbeddingCreate,
    EmbeddingUsage,
)

MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300_000
# The names OpenAI's clients and frameworks default to: listed by /v1/models beside the embedder's own name.
OPENAI_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")

Input = str | list[int]


class Embeddings:
    def __init__(self, embedder: Callable[[], Embedder], *, name: str) -> None:
        self._embedder = embedder  # loaded on first use, as file search loads it
        self.name = name  # the embedder's name, known before it is loaded

    def model_names(self) -> list[str]:
        return [self.name, *OPENAI_MODELS]

    def create(self, request: EmbeddingCreate) -> CreateEmbeddingResponse:
        inputs, lone = _inputs(request.input)
        embedder = self._embedder()
        dimensions = _dimensions(request.dimensions, embedder)
        ids = _token_ids(inputs, lone, embedder)
        vectors = embedder.embed_token_ids(ids)
        if dimensions < embedder.dim:
            vectors = normalise(vectors[:, :dimensions])
        tokens = sum(len(row) for row in ids)
        encode = _base64 if request.encoding_format == "base64" else _floats
        # Built without validation: the values are ours, and checking 2048 x dim floats again costs real time.
        data = [Embedding.model_construct(object="embedding", index=i, embedding=encode(vector))
                for i, vector in enumerate(vectors)]
        return CreateEmbeddingResponse(data=data, model=request.model,
                                       usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))


def _inputs(value: str | list[str] | list[int] | list[list[int]]) -> tuple[list[Input], bool]:
    """The inputs one by one, and whether the request held a single one (the API words its limits by that)."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("Invalid 'input': input cannot be an empty string.")
        return [value], True
    if not value:
        raise InvalidRequest("Invalid 'input': input cannot be an empty array.")
    if isinstance(value[0], int):  # one input's token ids
        return [[int(v) for v in value]], True
    inputs: list[Input] = [v if isinstance(v, str) else list(v) for v in value]
    if len(inputs) > MAX_INPUTS:
        raise InvalidRequest(f"Invalid 'input': array length must be {MAX_INPUTS} or less.", param="input")
    for i, item in enumerate(inputs):
        if not item:
            kind = "string" if isinstance(item, str) else "array"
            raise InvalidRequest(f"Invalid 'input[{i}]': input cannot be an empty {kind}.", param=f"input[{i}]",
                                 code="invalid_value")
    return inputs, False


def _dimensions(asked: int | None, embedder: Embedder) -> int:
    if asked is None:
        return embedder.dim
    if not embedder.shortens:
        raise InvalidRequest("This model does not support specifying dimensions.")
    if asked > embedder.dim:
        raise InvalidRequest(f"Invalid value for 'dimensions' = {asked}. Must be less than or equal to "
                             f"{embedder.dim}.", param="dimensions")
    return asked


def _token_ids(inputs: Sequence[Input], lone: bool, embedder: Embedder) -> list[TokenIds]:
    texts = [item for item in inputs if isinstance(item, str)]
    tokenized = iter(embedder.tokenize(texts))
    ids: list[TokenIds] = []
    for i, item in enumerate(inputs):
        where = "input" if lone else f"input[{i}]"
        row = next(tokenized) if isinstance(item, str) else _given_ids(item, where, embedder.vocab_size)
        if len(row) > embedder.max_input_tokens:
            if lone:
                raise InvalidRequest(f"Invalid 'input': maximum context length is {embedder.max_input_tokens} tokens.")
            raise InvalidRequest(f"Invalid '{where}': maximum input length is {embedder.max_input_tokens} tokens.",
                                 param=where, code="invalid_value")
        ids.append(row)
    total = sum(len(row) for row in ids)
    if total > MAX_REQUEST_TOKENS:
        raise TooManyTokens(f"Requested {total} tokens, max {MAX_REQUEST_TOKENS} tokens per request")
    return ids


def _given_ids(item: list[int], where: str, vocab_size: int) -> TokenIds:
    # Checked as Python ints: a JSON integer may be far outside what any array type holds.
    j = next((j for j, token in enumerate(item) if not 0 <= token < vocab_size), None)
    if j is not None:
        raise InvalidRequest(f"Invalid '{where}[{j}]': token id {item[j]} is not in the embedding model's "
                             f"vocabulary (ids 0 to {vocab_size - 1}).", param=f"{where}[{j}]", code="invalid_value")
    return np.asarray(item, dtype=np.int32)


def _floats(vector: Vectors) -> list[float]:
    values: list[float] = vector.tolist()  # float32 values exactly, as doubles
    return values


def _base64(vector: Vectors) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
