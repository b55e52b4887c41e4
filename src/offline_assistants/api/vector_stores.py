"""/v1/vector_stores: stores, their files and file batches, file content, and search."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_assistants.api.endpoint import answer, engine, list_params
from offline_assistants.schemas.validation import parse_body, parse_query
from offline_assistants.schemas.vector_stores import (
    FileBatchCreate,
    VectorStoreCreate,
    VectorStoreFileCreate,
    VectorStoreFileListParams,
    VectorStoreFileUpdate,
    VectorStoreSearch,
    VectorStoreUpdate,
)

STORE = "/v1/vector_stores/{vector_store_id}"


def _store(request: Request) -> str:
    return str(request.path_params["vector_store_id"])


async def create_store(request: Request) -> Response:
    req = parse_body(VectorStoreCreate, await request.body())
    return await answer(engine(request).vector_stores.create, req)


async def list_stores(request: Request) -> Response:
    return await answer(engine(request).vector_stores.list, list_params(request))


async def get_store(request: Request) -> Response:
    return await answer(engine(request).vector_stores.get, _store(request))


async def update_store(request: Request) -> Response:
    req = parse_body(VectorStoreUpdate, await request.body())
    return await answer(engine(request).vector_stores.update, _store(request), req)


async def delete_store(request: Request) -> Response:
    return await answer(engine(request).vector_stores.delete, _store(request))


async def search(request: Request) -> Response:
    req = parse_body(VectorStoreSearch, await request.body())
    return await answer(engine(request).vector_stores.search, _store(request), req)


async def create_file(request: Request) -> Response:
    req = parse_body(VectorStoreFileCreate, await request.body())
    return await answer(engine(request).vector_stores.create_file, _store(request), req)


async def list_files(request: Request) -> Response:
    params = parse_query(VectorStoreFileListParams, dict(request.query_params))
    return await answer(engine(request).vector_stores.list_files, _store(request), params, params.filter)


async def get_file(request: Request) -> Response:
    return await answer(engine(request).vector_stores.get_file, _store(request), request.path_params["file_id"])


async def update_file(request: Request) -> Response:
    req = parse_body(VectorStoreFileUpdate, await request.body())
    return await answer(engine(request).vector_stores.update_file, _store(request), request.path_params["file_id"],
                        req)


async def delete_file(request: Request) -> Response:
    return await answer(engine(request).vector_stores.delete_file, _store(request), request.path_params["file_id"])


async def file_content(request: Request) -> Response:
    return await answer(engine(request).vector_stores.file_content, _store(request),
                        request.path_params["file_id"])


async def create_batch(request: Request) -> Response:
    req = parse_body(FileBatchCreate, await request.body())
    return await answer(engine(request).vector_stores.create_batch, _store(request), req)


async def get_batch(request: Request) -> Response:
    return await answer(engine(request).vector_stores.get_batch, _store(request), request.path_params["batch_id"])


async def cancel_batch(request: Request) -> Response:
    return await answer(engine(request).vector_stores.cancel_batch, _store(request), request.path_params["batch_id"])


async def list_batch_files(request: Request) -> Response:
    params = parse_query(VectorStoreFileListParams, dict(request.query_params))
    return await answer(engine(request).vector_stores.list_batch_files, _store(request),
                        request.path_params["batch_id"], params, params.filter)


routes = [
    Route("/v1/vector_stores", create_store, methods=["POST"]),
    Route("/v1/vector_stores", list_stores, methods=["GET"]),
    Route(STORE, get_store, methods=["GET"]),
    Route(STORE, update_store, methods=["POST"]),
    Route(STORE, delete_store, methods=["DELETE"]),
    Route(STORE + "/search", search, methods=["POST"]),
    Route(STORE + "/files", create_file, methods=["POST"]),
    Route(STORE + "/files", list_files, methods=["GET"]),
    Route(STORE + "/files/{file_id}", get_file, methods=["GET"]),
    Route(STORE + "/files/{file_id}", update_file, methods=["POST"]),
    Route(STORE + "/files/{file_id}", delete_file, methods=["DELETE"]),
    Route(STORE + "/files/{file_id}/content", file_content, methods=["GET"]),
    Route(STORE + "/file_batches", create_batch, methods=["POST"]),
    Route(STORE + "/file_batches/{batch_id}", get_batch, methods=["GET"]),
    Route(STORE + "/file_batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route(STORE + "/file_batches/{batch_id}/files", list_batch_files, methods=["GET"]),
]
