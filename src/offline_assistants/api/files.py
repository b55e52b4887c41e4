"""/v1/files: multipart uploads, listing, metadata and content."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from offline_assistants.api.endpoint import answer, engine, respond
from offline_assistants.api.errors import ServerError
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.engine.files import Files
from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.common import Deleted, Page
from offline_assistants.schemas.files import UPLOAD_PURPOSES, FileListParams, FileObject
from offline_assistants.schemas.validation import parse_query


async def upload_file(request: Request) -> Response:
    files = engine(request).files
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception:  # noqa: BLE001 - a malformed multipart body is the client's error
        raise InvalidRequest("Invalid multipart/form-data body.") from None
    upload, purpose = form.get("file"), form.get("purpose")
    try:
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("Missing required parameter: 'file'.", param="file",
                                 code="missing_required_parameter")
        if not isinstance(purpose, str):
            raise InvalidRequest("Missing required parameter: 'purpose'.", param="purpose",
                                 code="missing_required_parameter")
        obj = await run_in_threadpool(files.upload, upload.file, upload.filename or "file", purpose)
    finally:
        await form.close()
    return respond(obj)


async def list_files(request: Request) -> Response:
    params = parse_query(FileListParams, dict(request.query_params))
    return await answer(engine(request).files.list, params, params.purpose)


async def get_file(request: Request) -> Response:
    return await answer(engine(request).files.get, request.path_params["file_id"])


async def delete_file(request: Request) -> Response:
    return await answer(engine(request).files.delete, request.path_params["file_id"])


def _content(files: Files, file_id: str) -> FileResponse:
    obj = files.get(file_id)
    path = files.path(file_id)
    if not path.is_file():
        # The row outlived its bytes (removed by hand, a disk lost): say so in the envelope. Left to
        # FileResponse, it would raise mid-response, and the server would drop the connection.
        raise ServerError(f"The content of file '{file_id}' is missing from the server's storage.")
    return FileResponse(path, media_type="application/octet-stream", filename=obj.filename)


async def file_content(request: Request) -> Response:
    return await answer(_content, engine(request).files, request.path_params["file_id"])


FILE = "/v1/files/{file_id}"
UPLOAD_FORM: dict[str, dict[str, Any]] = {"file": {"type": "string", "format": "binary"},
               "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)}}

routes = [
    Operation("POST", "/v1/files", upload_file,
              Doc("createFile", "Upload a file.", FileObject, form=UPLOAD_FORM, required_form=("file", "purpose"))),
    Operation("GET", "/v1/files", list_files, Doc("listFiles", "List files.", Page[FileObject], query=FileListParams)),
    Operation("GET", FILE, get_file, Doc("retrieveFile", "Retrieve a file's object.", FileObject)),
    Operation("DELETE", FILE, delete_file, Doc("deleteFile", "Delete a file.", Deleted)),
    Operation("GET", FILE + "/content", file_content, Doc("downloadFile", "Download a file's bytes.", bytes)),
]
