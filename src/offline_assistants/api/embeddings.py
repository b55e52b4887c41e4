"""/v1/embeddings: texts or token ids to vectors, on the embedding model file search uses (engine/embeddings.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.schemas.embeddings import CreateEmbeddingResponse, EmbeddingCreate


async def create_embedding(request: Request) -> Response:
    body = await json_body(request, EmbeddingCreate)
    return await answer(engine(request).embeddings.create, body)


routes = [
    Operation("POST", "/v1/embeddings", create_embedding,
              Doc("createEmbedding", "Creates an embedding vector representing the input text.",
                  CreateEmbeddingResponse, body=EmbeddingCreate)),
]
