"""/v1/vector_stores: stores, their files and file batches, file content, and search."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, list_params
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.schemas.common import Deleted, ListParams, Page
from offline_assistants.schemas.validation import parse_query
from offline_assistants.schemas.vector_stores import (
    FileBatchCreate,
    FileContentPage,
    SearchPage,
    VectorStore,
    VectorStoreCreate,
    VectorStoreFile,
    VectorStoreFileBatch,
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
    req = await json_body(request, VectorStoreCreate)
    return await answer(engine(request).vector_stores.create, req)


async def list_stores(request: Request) -> Response:
    return await answer(engine(request).vector_stores.list, list_params(request))


async def get_store(request: Request) -> Response:
    return await answer(engine(request).vector_stores.get, _store(request))


async def update_store(request: Request) -> Response:
    req = await json_body(request, VectorStoreUpdate)
    return await answer(engine(request).vector_stores.update, _store(request), req)


async def delete_store(request: Request) -> Response:
    return await answer(engine(request).vector_stores.delete, _store(request))


async def search(request: Request) -> Response:
    req = await json_body(request, VectorStoreSearch)
    return await answer(engine(request).vector_stores.search, _store(request), req)


async def create_file(request: Request) -> Response:
    req = await json_body(request, VectorStoreFileCreate)
    return await answer(engine(request).vector_stores.create_file, _store(request), req)


async def list_files(request: Request) -> Response:
    params = parse_query(VectorStoreFileListParams, dict(request.query_params))
    return await answer(engine(request).vector_stores.list_files, _store(request), params, params.filter)


async def get_file(request: Request) -> Response:
    return await answer(engine(request).vector_stores.get_file, _store(request), request.path_params["file_id"])


async def update_file(request: Request) -> Response:
    req = await json_body(request, VectorStoreFileUpdate)
    return await answer(engine(request).vector_stores.update_file, _store(request), request.path_params["file_id"],
                        req)


async def delete_file(request: Request) -> Response:
    return await answer(engine(request).vector_stores.delete_file, _store(request), request.path_params["file_id"])


async def file_content(request: Request) -> Response:
    return await answer(engine(request).vector_stores.file_content, _store(request),
                        request.path_params["file_id"])


async def create_batch(request: Request) -> Response:
    req = await json_body(request, FileBatchCreate)
    return await answer(engine(request).vector_stores.create_batch, _store(request), req)


async def get_batch(request: Request) -> Response:
    return await answer(engine(request).vector_stores.get_batch, _store(request), request.path_params["batch_id"])


async def cancel_batch(request: Request) -> Response:
    return await answer(engine(request).vector_stores.cancel_batch, _store(request), request.path_params["batch_id"])


async def list_batch_files(request: Request) -> Response:
    params = parse_query(VectorStoreFileListParams, dict(request.query_params))
    return await answer(engine(request).vector_stores.list_batch_files, _store(request),
                        request.path_params["batch_id"], params, params.filter)


FILES = STORE + "/files"
FILE = FILES + "/{file_id}"
BATCH = STORE + "/file_batches/{batch_id}"

routes = [
    Operation("POST", "/v1/vector_stores", create_store,
              Doc("createVectorStore", "Create a vector store.", VectorStore, body=VectorStoreCreate)),
    Operation("GET", "/v1/vector_stores", list_stores,
              Doc("listVectorStores", "List vector stores.", Page[VectorStore], query=ListParams)),
    Operation("GET", STORE, get_store, Doc("getVectorStore", "Retrieve a vector store.", VectorStore)),
    Operation("POST", STORE, update_store,
              Doc("modifyVectorStore", "Modify a vector store.", VectorStore, body=VectorStoreUpdate)),
    Operation("DELETE", STORE, delete_store, Doc("deleteVectorStore", "Delete a vector store.", Deleted)),
    Operation("POST", STORE + "/search", search,
              Doc("searchVectorStore", "Search a vector store.", SearchPage, body=VectorStoreSearch)),
    Operation("POST", FILES, create_file,
              Doc("createVectorStoreFile", "Add a file to a vector store.", VectorStoreFile,
                  body=VectorStoreFileCreate)),
    Operation("GET", FILES, list_files,
              Doc("listVectorStoreFiles", "List a vector store's files.", Page[VectorStoreFile],
                  query=VectorStoreFileListParams)),
    Operation("GET", FILE, get_file, Doc("getVectorStoreFile", "Retrieve a vector store file.", VectorStoreFile)),
    Operation("POST", FILE, update_file,
              Doc("updateVectorStoreFileAttributes", "Update a vector store file's attributes.", VectorStoreFile,
                  body=VectorStoreFileUpdate)),
    Operation("DELETE", FILE, delete_file, Doc("deleteVectorStoreFile", "Remove a file from a vector store.", Deleted)),
    Operation("GET", FILE + "/content", file_content,
              Doc("retrieveVectorStoreFileContent", "The parsed content of a vector store file.", FileContentPage)),
    Operation("POST", STORE + "/file_batches", create_batch,
              Doc("createVectorStoreFileBatch", "Add a batch of files to a vector store.", VectorStoreFileBatch,
                  body=FileBatchCreate)),
    Operation("GET", BATCH, get_batch,
              Doc("getVectorStoreFileBatch", "Retrieve a file batch.", VectorStoreFileBatch)),
    Operation("POST", BATCH + "/cancel", cancel_batch,
              Doc("cancelVectorStoreFileBatch", "Cancel a file batch.", VectorStoreFileBatch)),
    Operation("GET", BATCH + "/files", list_batch_files,
              Doc("listFilesInVectorStoreBatch", "List the files of a batch.", Page[VectorStoreFile],
                  query=VectorStoreFileListParams)),
]
