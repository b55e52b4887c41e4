"""Runs, their steps, and tool outputs; with a thread and run in one call. The three that start or resume a run
can stream it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from offline_assistants.api.endpoint import answer, engine, json_body, list_params
from offline_assistants.api.operation import Doc, Operation
from offline_assistants.api.sse import stream_or_json
from offline_assistants.api.threads import THREAD
from offline_assistants.errors import InvalidRequest
from offline_assistants.schemas.common import ListParams, Page
from offline_assistants.schemas.runs import (
    FILE_SEARCH_CONTENT,
    Run,
    RunCreate,
    RunStep,
    RunUpdate,
    SubmitToolOutputs,
    ThreadAndRunCreate,
)

RUNS = THREAD + "/runs"
RUN = RUNS + "/{run_id}"
STEPS = RUN + "/steps"


async def create_run(request: Request) -> Response:
    runs, thread_id = engine(request).runs, request.path_params["thread_id"]
    req = await json_body(request, RunCreate)
    include = _include(request)
    return await stream_or_json(req.stream, lambda listener: runs.create(thread_id, req, listener, include=include))


async def create_thread_and_run(request: Request) -> Response:
    runs = engine(request).runs
    req = await json_body(request, ThreadAndRunCreate)
    return await stream_or_json(req.stream, lambda listener: runs.create_thread_and_run(req, listener))


async def submit_tool_outputs(request: Request) -> Response:
    runs, p = engine(request).runs, request.path_params
    req = await json_body(request, SubmitToolOutputs)
    return await stream_or_json(
        req.stream, lambda listener: runs.submit_tool_outputs(p["thread_id"], p["run_id"], req, listener))


async def list_runs(request: Request) -> Response:
    return await answer(engine(request).runs.list, request.path_params["thread_id"], list_params(request))


async def get_run(request: Request) -> Response:
    p = request.path_params
    return await answer(engine(request).runs.get, p["thread_id"], p["run_id"])


async def update_run(request: Request) -> Response:
    req = await json_body(request, RunUpdate)
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
    given = tuple(request.query_params.getlist("include[]") + request.query_params.getlist("include"))
    for i, value in enumerate(given):
        if value != FILE_SEARCH_CONTENT:
            raise InvalidRequest(f"Invalid value: '{value}'. Supported values are: '{FILE_SEARCH_CONTENT}'.",
                                 param=f"include[{i}]", code="invalid_value")
    return given


# `include[]=step_details.tool_calls[*].file_search.results[*].content` adds file search results' text.
INCLUDE = {"include[]": {"type": "array", "items": {"type": "string", "enum": [FILE_SEARCH_CONTENT]}}}

routes = [
    # Must be matched before threads' POST /v1/threads/{thread_id}, which would take "runs" for a thread id.
    Operation("POST", "/v1/threads/runs", create_thread_and_run,
              Doc("createThreadAndRun", "Create a thread and run it in one request.", Run, body=ThreadAndRunCreate,
                  streams=True)),
    Operation("POST", RUNS, create_run,
              Doc("createRun", "Create a run.", Run, body=RunCreate, extra_query=INCLUDE, streams=True)),
    Operation("GET", RUNS, list_runs, Doc("listRuns", "List the runs of a thread.", Page[Run], query=ListParams)),
    Operation("GET", RUN, get_run, Doc("getRun", "Retrieve a run.", Run)),
    Operation("POST", RUN, update_run, Doc("modifyRun", "Modify a run.", Run, body=RunUpdate)),
    Operation("POST", RUN + "/cancel", cancel_run, Doc("cancelRun", "Cancel a run.", Run)),
    Operation("POST", RUN + "/submit_tool_outputs", submit_tool_outputs,
              Doc("submitToolOuputsToRun", "Submit the outputs of a run's tool calls.", Run, body=SubmitToolOutputs,
                  streams=True)),
    Operation("GET", STEPS, list_steps,
              Doc("listRunSteps", "List the steps of a run.", Page[RunStep], query=ListParams, extra_query=INCLUDE)),
    Operation("GET", STEPS + "/{step_id}", get_step,
              Doc("getRunStep", "Retrieve a run step.", RunStep, extra_query=INCLUDE)),
]
