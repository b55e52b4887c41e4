"""/v1/uploads: create an upload, add its parts (multipart), complete it into a File, or cancel it."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, respond
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.uploads import Upload, UploadComplete, UploadCreate, UploadPart


async def create_upload(request: Request) -> Response:
    req = await json_body(request, UploadCreate)
    return await answer(engine(request).uploads.create, req)


async def add_part(request: Request) -> Response:
    uploads = engine(request).uploads
    length = request.headers.get("content-length", "")
    if length.isdigit():
        uploads.check_part_length(int(length))  # a part far over the limit is refused before it is read
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception:  # noqa: BLE001 - a malformed multipart body is the client's error
        raise InvalidRequest("Invalid multipart/form-data body.") from None
    data = form.get("data")
    try:
        if not isinstance(data, UploadFile):
            raise InvalidRequest("Missing required parameter: 'data'.", param="data",
                                 code="missing_required_parameter")
        obj = await run_in_threadpool(uploads.add_part, request.path_params["upload_id"], data.file)
    finally:
        await form.close()
    return respond(obj)


async def complete_upload(request: Request) -> Response:
    req = await json_body(request, UploadComplete)
    return await answer(engine(request).uploads.complete, request.path_params["upload_id"], req)


async def cancel_upload(request: Request) -> Response:
    return await answer(engine(request).uploads.cancel, request.path_params["upload_id"])


UPLOAD = "/v1/uploads/{upload_id}"

routes = [
    Operation("POST", "/v1/uploads", create_upload,
              Doc("createUpload", "Create an upload, to add parts to.", Upload, body=UploadCreate)),
    Operation("POST", UPLOAD + "/parts", add_part,
              Doc("addUploadPart", "Add a part to an upload.", UploadPart,
                  form={"data": {"type": "string", "format": "binary"}}, required_form=("data",))),
    Operation("POST", UPLOAD + "/complete", complete_upload,
              Doc("completeUpload", "Complete an upload into a file.", Upload, body=UploadComplete)),
    Operation("POST", UPLOAD + "/cancel", cancel_upload, Doc("cancelUpload", "Cancel an upload.", Upload)),
]
