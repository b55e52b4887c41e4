"""/v1/containers: containers and their files (multipart uploads or a file_id), and a file's bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from offline_assistants.api.endpoint import answer, engine, json_body, list_params, respond
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.engine.containers import ContainerFileContent
from offline_assistants.engine.files import CHUNK
from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.common import Deleted, ListParams, Page
from offline_assistants.schemas.containers import (
    Container,
    ContainerCreate,
    ContainerFile,
    ContainerFileCreate,
    ContainerListParams,
)
from offline_assistants.schemas.validation import parse_query

CONTAINER = "/v1/containers/{container_id}"
FILES = CONTAINER + "/files"
FILE = FILES + "/{file_id}"


def _container(request: Request) -> str:
    return str(request.path_params["container_id"])


def _file(request: Request) -> str:
    return str(request.path_params["file_id"])


async def create_container(request: Request) -> Response:
    req = await json_body(request, ContainerCreate)
    return await answer(engine(request).containers.create, req)


async def list_containers(request: Request) -> Response:
    params = parse_query(ContainerListParams, dict(request.query_params))
    return await answer(engine(request).containers.list, params)


async def get_container(request: Request) -> Response:
    return await answer(engine(request).containers.get, _container(request))


async def delete_container(request: Request) -> Response:
    return await answer(engine(request).containers.delete, _container(request))


async def create_file(request: Request) -> Response:
    """Either form the SDK sends: a multipart upload of `file`, or JSON naming an uploaded file's `file_id`."""
    containers = engine(request).containers
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        req = await json_body(request, ContainerFileCreate)
        return await answer(containers.add_file, _container(request), req)
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception:  # noqa: BLE001 - a malformed multipart body is the client's error
        raise InvalidRequest("Invalid multipart/form-data body.") from None
    try:
        upload, file_id = form.get("file"), form.get("file_id")
        if upload is not None and file_id is not None:
            raise InvalidRequest("Provide either 'file' or 'file_id', not both.", param="file_id")
        if isinstance(upload, UploadFile):
            obj = await run_in_threadpool(containers.upload_file, _container(request), upload.file,
                                          upload.filename or "file")
        elif isinstance(file_id, str):
            obj = await run_in_threadpool(containers.add_file, _container(request),
                                          ContainerFileCreate(file_id=file_id))
        else:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file",
                                 code="missing_required_parameter")
    finally:
        await form.close()
    return respond(obj)


async def list_files(request: Request) -> Response:
    return await answer(engine(request).containers.list_files, _container(request), list_params(request))


async def get_file(request: Request) -> Response:
    return await answer(engine(request).containers.get_file, _container(request), _file(request))


async def delete_file(request: Request) -> Response:
    return await answer(engine(request).containers.delete_file, _container(request), _file(request))


async def file_content(request: Request) -> Response:
    content: ContainerFileContent = await run_in_threadpool(
        engine(request).containers.open_content, _container(request), _file(request))

    async def chunks() -> AsyncIterator[bytes]:
        left = content.size  # what content-length declared, though code may be appending to the file meanwhile
        try:
            while left > 0 and (chunk := await run_in_threadpool(content.stream.read, min(CHUNK, left))):
                left -= len(chunk)
                yield chunk
        finally:
            content.stream.close()

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={
        "content-length": str(content.size), "content-disposition": _disposition(content.filename)})


def _disposition(name: str) -> str:
    # Header values are latin-1: a name that is not plain ASCII goes percent-encoded (RFC 6266).
    quoted = quote(name)
    return f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"


FILE_FORM: dict[str, dict[str, Any]] = {"file": {"type": "string", "format": "binary"},
                                        "file_id": {"type": "string"}}

routes = [
    Operation("POST", "/v1/containers", create_container,
              Doc("CreateContainer", "Create a container.", Container, body=ContainerCreate)),
    Operation("GET", "/v1/containers", list_containers,
              Doc("ListContainers", "List containers.", Page[Container], query=ContainerListParams)),
    Operation("GET", CONTAINER, get_container, Doc("RetrieveContainer", "Retrieve a container.", Container)),
    Operation("DELETE", CONTAINER, delete_container, Doc("DeleteContainer", "Delete a container.", Deleted)),
    Operation("POST", FILES, create_file,
              Doc("CreateContainerFile", "Add a file to a container: an upload, or an uploaded file's id.",
                  ContainerFile, body=ContainerFileCreate, form=FILE_FORM)),
    Operation("GET", FILES, list_files,
              Doc("ListContainerFiles", "List a container's files.", Page[ContainerFile], query=ListParams)),
    Operation("GET", FILE, get_file, Doc("RetrieveContainerFile", "Retrieve a container file.", ContainerFile)),
    Operation("DELETE", FILE, delete_file, Doc("DeleteContainerFile", "Delete a container file.", Deleted)),
    Operation("GET", FILE + "/content", file_content,
              Doc("RetrieveContainerFileContent", "Download a container file's bytes.", bytes)),
]
