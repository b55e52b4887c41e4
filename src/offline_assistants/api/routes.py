"""Routes: each one parses its input into a schema, calls the engine, and serialises what comes back."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from offline_assistants.api.sse import stream_run
from offline_assistants.engine import Engine
from offline_assistants.errors import InvalidRequest, ServerError
from offline_assistants.schemas.assistants import AssistantCreate, AssistantUpdate
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.files import FileListParams
from offline_assistants.schemas.messages import MessageCreate, MessageListParams, MessageUpdate
from offline_assistants.schemas.runs import Run, RunCreate, RunUpdate, SubmitToolOutputs, ThreadAndRunCreate
from offline_assistants.schemas.threads import ThreadCreate, ThreadUpdate
from offline_assistants.schemas.validation import parse_body, parse_query

POLL_AFTER_MS = "200"

Handler = Callable[[Request], Awaitable[Response]]


def respond(value: Any) -> Response:
    if isinstance(value, Response):
        return value
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if isinstance(value, Run) else None
    if isinstance(value, BaseModel):
        return JSONResponse(value.model_dump(mode="json"), headers=headers)
    return JSONResponse(value, headers=headers)


def sync(fn: Callable[..., Any]) -> Handler:
    """Run an engine call on the thread pool (SQLite and the tokenizer block), with the body already read."""

    @functools.wraps(fn)
    async def handler(request: Request) -> Response:
        body = await request.body() if request.method == "POST" else b""
        return respond(await run_in_threadpool(fn, request, body, **request.path_params))

    return handler


def list_params(request: Request) -> ListParams:
    return parse_query(ListParams, dict(request.query_params))


def routes(engine: Engine) -> list[Route]:
    e = engine

    # --- models ---
    def model_object(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "offline-assistants"}

    @sync
    def list_models(request: Request, body: bytes) -> Any:
        from offline_assistants.llm.catalog import available

        names = [e.backend.name] + [m.name for m in available(e.settings.models_dir) if m.name != e.backend.name]
        return {"object": "list", "data": [model_object(n) for n in names]}

    @sync
    def get_model(request: Request, body: bytes, model: str) -> Any:
        # Any model name maps to the loaded local model, so every name exists.
        return model_object(model)

    # --- assistants ---
    @sync
    def create_assistant(request: Request, body: bytes) -> Any:
        return e.assistants.create(parse_body(AssistantCreate, body))

    @sync
    def list_assistants(request: Request, body: bytes) -> Any:
        return e.assistants.list(list_params(request))

    @sync
    def get_assistant(request: Request, body: bytes, assistant_id: str) -> Any:
        return e.assistants.get(assistant_id)

    @sync
    def update_assistant(request: Request, body: bytes, assistant_id: str) -> Any:
        return e.assistants.update(assistant_id, parse_body(AssistantUpdate, body))

    @sync
    def delete_assistant(request: Request, body: bytes, assistant_id: str) -> Any:
        return e.assistants.delete(assistant_id)

    # --- threads ---
    @sync
    def create_thread(request: Request, body: bytes) -> Any:
        return e.threads.create(parse_body(ThreadCreate, body))

    @sync
    def get_thread(request: Request, body: bytes, thread_id: str) -> Any:
        return e.threads.get(thread_id)

    @sync
    def update_thread(request: Request, body: bytes, thread_id: str) -> Any:
        return e.threads.update(thread_id, parse_body(ThreadUpdate, body))

    @sync
    def delete_thread(request: Request, body: bytes, thread_id: str) -> Any:
        return e.threads.delete(thread_id)

    # --- messages ---
    @sync
    def create_message(request: Request, body: bytes, thread_id: str) -> Any:
        return e.threads.add_message(thread_id, parse_body(MessageCreate, body))

    @sync
    def list_messages(request: Request, body: bytes, thread_id: str) -> Any:
        run_id = parse_query(MessageListParams, dict(request.query_params)).run_id
        return e.threads.list_messages(thread_id, list_params(request), run_id)

    @sync
    def get_message(request: Request, body: bytes, thread_id: str, message_id: str) -> Any:
        return e.threads.get_message(thread_id, message_id)

    @sync
    def update_message(request: Request, body: bytes, thread_id: str, message_id: str) -> Any:
        return e.threads.update_message(thread_id, message_id, parse_body(MessageUpdate, body))

    @sync
    def delete_message(request: Request, body: bytes, thread_id: str, message_id: str) -> Any:
        return e.threads.delete_message(thread_id, message_id)

    # --- runs ---
    async def create_run(request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        req = parse_body(RunCreate, await request.body())
        if req.stream:
            return await stream_run(lambda listener: e.runs.create(thread_id, req, listener))
        run, _ = await run_in_threadpool(e.runs.create, thread_id, req)
        return respond(run)

    async def create_thread_and_run(request: Request) -> Response:
        req = parse_body(ThreadAndRunCreate, await request.body())
        if req.stream:
            return await stream_run(lambda listener: e.runs.create_thread_and_run(req, listener))
        run, _ = await run_in_threadpool(e.runs.create_thread_and_run, req)
        return respond(run)

    async def submit_tool_outputs(request: Request) -> Response:
        thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
        req = parse_body(SubmitToolOutputs, await request.body())
        if req.stream:
            return await stream_run(lambda listener: e.runs.submit_tool_outputs(thread_id, run_id, req, listener))
        run, _ = await run_in_threadpool(e.runs.submit_tool_outputs, thread_id, run_id, req)
        return respond(run)

    @sync
    def list_runs(request: Request, body: bytes, thread_id: str) -> Any:
        return e.runs.list(thread_id, list_params(request))

    @sync
    def get_run(request: Request, body: bytes, thread_id: str, run_id: str) -> Any:
        return e.runs.get(thread_id, run_id)

    @sync
    def update_run(request: Request, body: bytes, thread_id: str, run_id: str) -> Any:
        return e.runs.update(thread_id, run_id, parse_body(RunUpdate, body))

    @sync
    def cancel_run(request: Request, body: bytes, thread_id: str, run_id: str) -> Any:
        return e.runs.cancel(thread_id, run_id)

    @sync
    def list_steps(request: Request, body: bytes, thread_id: str, run_id: str) -> Any:
        return e.runs.list_steps(thread_id, run_id, list_params(request))

    @sync
    def get_step(request: Request, body: bytes, thread_id: str, run_id: str, step_id: str) -> Any:
        return e.runs.get_step(thread_id, run_id, step_id)

    # --- files ---
    async def upload_file(request: Request) -> Response:
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
            obj = await run_in_threadpool(e.files.upload, upload.file, upload.filename or "file", purpose)
        finally:
            await form.close()
        return respond(obj)

    @sync
    def list_files(request: Request, body: bytes) -> Any:
        params = parse_query(FileListParams, dict(request.query_params))
        page: Page[Any] = e.files.list(params, params.purpose)
        return page

    @sync
    def get_file(request: Request, body: bytes, file_id: str) -> Any:
        return e.files.get(file_id)

    @sync
    def delete_file(request: Request, body: bytes, file_id: str) -> Any:
        return e.files.delete(file_id)

    @sync
    def file_content(request: Request, body: bytes, file_id: str) -> Any:
        obj = e.files.get(file_id)
        path = e.files.path(file_id)
        if not path.is_file():
            # The row outlived its bytes (removed by hand, a disk lost): say so in the envelope. Left to
            # FileResponse, it would raise mid-response, and the server would drop the connection.
            raise ServerError(f"The content of file '{file_id}' is missing from the server's storage.")
        return FileResponse(path, media_type="application/octet-stream", filename=obj.filename)

    t, r = "/v1/threads/{thread_id}", "/v1/threads/{thread_id}/runs/{run_id}"
    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        Route("/v1/assistants", create_assistant, methods=["POST"]),
        Route("/v1/assistants", list_assistants, methods=["GET"]),
        Route("/v1/assistants/{assistant_id}", get_assistant, methods=["GET"]),
        Route("/v1/assistants/{assistant_id}", update_assistant, methods=["POST"]),
        Route("/v1/assistants/{assistant_id}", delete_assistant, methods=["DELETE"]),
        Route("/v1/threads", create_thread, methods=["POST"]),
        Route("/v1/threads/runs", create_thread_and_run, methods=["POST"]),
        Route(t, get_thread, methods=["GET"]),
        Route(t, update_thread, methods=["POST"]),
        Route(t, delete_thread, methods=["DELETE"]),
        Route(t + "/messages", create_message, methods=["POST"]),
        Route(t + "/messages", list_messages, methods=["GET"]),
        Route(t + "/messages/{message_id}", get_message, methods=["GET"]),
        Route(t + "/messages/{message_id}", update_message, methods=["POST"]),
        Route(t + "/messages/{message_id}", delete_message, methods=["DELETE"]),
        Route(t + "/runs", create_run, methods=["POST"]),
        Route(t + "/runs", list_runs, methods=["GET"]),
        Route(r, get_run, methods=["GET"]),
        Route(r, update_run, methods=["POST"]),
        Route(r + "/cancel", cancel_run, methods=["POST"]),
        Route(r + "/submit_tool_outputs", submit_tool_outputs, methods=["POST"]),
        Route(r + "/steps", list_steps, methods=["GET"]),
        Route(r + "/steps/{step_id}", get_step, methods=["GET"]),
        Route("/v1/files", upload_file, methods=["POST"]),
        Route("/v1/files", list_files, methods=["GET"]),
        Route("/v1/files/{file_id}", get_file, methods=["GET"]),
        Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
    ]
