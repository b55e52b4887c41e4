"""Runs, their steps, and tool outputs; with a thread and run in one call. The three that start or resume a run
can stream it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offline_assistants.api.endpoint import answer, engine, list_params
from offline_assistants.api.sse import stream_or_json
from offline_assistants.api.threads import THREAD
from offline_assistants.schemas.runs import RunCreate, RunUpdate, SubmitToolOutputs, ThreadAndRunCreate
from offline_assistants.schemas.validation import parse_body

RUNS = THREAD + "/runs"
RUN = RUNS + "/{run_id}"
STEPS = RUN + "/steps"


async def create_run(request: Request) -> Response:
    runs, thread_id = engine(request).runs, request.path_params["thread_id"]
    req = parse_body(RunCreate, await request.body())
    include = _include(request)
    return await stream_or_json(req.stream, lambda listener: runs.create(thread_id, req, listener, include=include))


async def create_thread_and_run(request: Request) -> Response:
    runs = engine(request).runs
    req = parse_body(ThreadAndRunCreate, await request.body())
    return await stream_or_json(req.stream, lambda listener: runs.create_thread_and_run(req, listener))


async def submit_tool_outputs(request: Request) -> Response:
    runs, p = engine(request).runs, request.path_params
    req = parse_body(SubmitToolOutputs, await request.body())
    return await stream_or_json(
        req.stream, lambda listener: runs.submit_tool_outputs(p["thread_id"], p["run_id"], req, listener))


async def list_runs(request: Request) -> Response:
    return await answer(engine(request).runs.list, request.path_params["thread_id"], list_params(request))


async def get_run(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).runs.get, p["thread_id"], p["run_id"])


async def update_run(request: Request) -> Response:
    req = parse_body(RunUpdate, await request.body())
    p = request.path_params
    return await answer(engine(request).runs.update, p["thread_id"], p["run_id"], req)


async def cancel_run(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).runs.cancel, p["thread_id"], p["run_id"])


async def list_steps(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).runs.list_steps, p["thread_id"], p["run_id"], list_params(request),
                        _include(request))


async def get_step(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).runs.get_step, p["thread_id"], p["run_id"], p["step_id"], _include(request))


def _include(request: Request) -> tuple[str, ...]:
    """`include[]` as the SDK sends it (repeated `include[]=...`), or plain `include`."""
    return tuple(request.query_params.getlist("include[]") + request.query_params.getlist("include"))


routes = [
    # Must be matched before threads' POST /v1/threads/{thread_id}, which would take "runs" for a thread id.
    Route("/v1/threads/runs", create_thread_and_run, methods=["POST"]),
    Route(RUNS, create_run, methods=["POST"]),
    Route(RUNS, list_runs, methods=["GET"]),
    Route(RUN, get_run, methods=["GET"]),
    Route(RUN, update_run, methods=["POST"]),
    Route(RUN + "/cancel", cancel_run, methods=["POST"]),
    Route(RUN + "/submit_tool_outputs", submit_tool_outputs, methods=["POST"]),
    Route(STEPS, list_steps, methods=["GET"]),
    Route(STEPS + "/{step_id}", get_step, methods=["GET"]),
]
