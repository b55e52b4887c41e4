"""Server-sent events: a run's events, as the real API frames them, ending with `done` / `[DONE]`.

`stream_or_json` is the reply of every endpoint that can stream (a new run, a thread and run, tool outputs).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from offline_assistants.api.endpoint import respond
from offline_assistants.api.errors import ServerError
from offline_assistants.engine.events import FINAL_RUN_EVENTS, Event, Listener, Subscription
from offline_assistants.schemas.runs import Run

log = logging.getLogger(__name__)

# Starts a run (or resumes one) with a listener for its events, or with none when the caller wants no stream.
Start = Callable[[Listener | None], tuple[Run, Subscription | None]]


def frame(event: str, data: Any) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


async def stream_or_json(stream: bool | None, start: Start) -> Response:
    """The run's events as SSE if the request asked for a stream, else the run as it stands once started."""
    if stream:
        return await stream_run(start)
    run, _ = await run_in_threadpool(start, None)
    return respond(run)


async def stream_run(start: Start) -> StreamingResponse:
    """Subscribe, then start (the subscription exists before the run's first event), then forward events.

    If `start` refuses (a 400 or 404), the error propagates as a plain JSON error before any byte is streamed.
    A client that goes away only closes its subscription: the run goes on and is stored.
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Event] = asyncio.Queue()

    def listener(event: Event) -> None:
        loop.call_soon_threadsafe(inbox.put_nowait, event)

    _, sub = await run_in_threadpool(start, listener)

    async def body() -> AsyncIterator[str]:
        try:
            finished = False
            while not finished:
                # Whatever has queued up while the last write went out leaves in one write: fewer syscalls and
                # wake-ups per token when the client reads slower than the model writes.
                batch = [await inbox.get()]
                while not inbox.empty():
                    batch.append(inbox.get_nowait())
                chunks = []
                for event in batch:
                    try:
                        chunks.append(frame(event.event, event.data))
                    except (TypeError, ValueError):  # cannot happen for our own events; say so rather than hang
                        log.exception("could not encode event %s", event.event)
                        chunks.append(frame("error", ServerError("The server could not encode a stream event.")
                                            .envelope()["error"]))
                        finished = True
                        break
                    if event.event in FINAL_RUN_EVENTS:
                        finished = True
                        break
                yield "".join(chunks)
            yield frame("done", "[DONE]")
        finally:
            if sub is not None:
                sub.close()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
