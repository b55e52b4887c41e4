"""The WebSocket mode of /v1/responses: one connection, many responses, each streamed as JSON frames.

The client sends `response.create` frames: the body of `POST /v1/responses` with a `type`, and optionally a
`stream_id`, the lane it runs on. The server answers each with the events an SSE stream of it carries (the same
recording, api/response_recording.py), one JSON text frame per event, echoing the lane's `stream_id`. The
responses of one lane run one after another in the order sent; lanes run side by side. A request refused (not
JSON, an unknown frame type, what `POST /v1/responses` answers with a 4xx) is an `error` frame with that HTTP
status, and the connection stays open. A client that goes away stops nothing: its runs go on and are stored.

`stream` is implied, and `background` is refused, as the real API has them in this mode; `generate: false`
(prepare a response without generating) is refused, as the engine has no such run. A `store: false` response
stays a valid `previous_response_id` while the connection is open (the newest of each lane: the real API keeps
only the newest in the connection's memory) and is forgotten when it is superseded or the connection closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from offline_assistants.api.response_recording import Recording, Recordings, forget
from offline_assistants.engine import Engine
from offline_assistants.errors import APIError, InvalidRequest
from offline_assistants.schemas.responses import ResponseCreate
from offline_assistants.schemas.validation import parse_body

log = logging.getLogger(__name__)

# The frame's own fields, beside the body of POST /v1/responses.
FRAME_FIELDS = ("type", "stream_id", "generate", "stream")


async def responses_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    connection = _Connection(websocket)
    try:
        await connection.serve()
    finally:
        await connection.close()


class _Connection:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.engine: Engine = websocket.app.state.engine
        self.recordings: Recordings = websocket.app.state.recordings
        self.lanes: dict[str | None, asyncio.Queue[dict[str, Any]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.sending = asyncio.Lock()  # lanes interleave whole frames
        self.unstored: dict[str | None, list[Recording]] = {}  # each lane's `store: false` responses kept

    async def serve(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            raw = text if text is not None else (message.get("bytes") or b"").decode("utf-8", "replace")
            try:
                frame = _frame(raw)
            except APIError as exc:
                await self._error(exc, None)
                continue
            lane = frame.get("stream_id")
            queue = self.lanes.get(lane)
            if queue is None:
                queue = self.lanes[lane] = asyncio.Queue()
                task = asyncio.get_running_loop().create_task(self._lane(lane, queue))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            queue.put_nowait(frame)

    async def _lane(self, lane: str | None, queue: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while True:
                await self._respond(lane, await queue.get())
        except Exception:  # noqa: BLE001 (a send to a client gone: the connection is ending, its runs go on)
            log.debug("a WebSocket lane ended", exc_info=True)

    async def _respond(self, lane: str | None, frame: dict[str, Any]) -> None:
        try:
            req = _request(frame)
            recording = await self.recordings.start(self.engine, req, tuple(req.include or ()), forget=False)
        except APIError as exc:
            await self._error(exc, lane)
            return
        kept = self.unstored.setdefault(lane, [])
        if req.store is False:
            kept.append(recording)
        async for batch in recording.follow():
            for event in batch:
                await self._send(event, lane)
        if req.store is False:  # the newest can be continued; those before it are done with
            for older in kept[:-1]:
                await run_in_threadpool(forget, self.engine, older.response_id)
            del kept[:-1]

    async def _send(self, event: dict[str, Any], lane: str | None) -> None:
        async with self.sending:
            await self.websocket.send_text(json.dumps(event if lane is None else {**event, "stream_id": lane},
                                                      separators=(",", ":")))

    async def _error(self, exc: APIError, lane: str | None) -> None:
        await self._send({"type": "error", "status": exc.status_code, **exc.envelope()}, lane)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for kept in self.unstored.values():
            for recording in kept:
                if recording.finished:
                    await run_in_threadpool(forget, self.engine, recording.response_id)
                else:  # still running: forgotten by its recorder once it ends
                    recording.forget_when_ended = True


def _frame(raw: str) -> dict[str, Any]:
    try:
        frame = json.loads(raw)
    except ValueError:
        raise InvalidRequest("We could not parse the JSON body of your WebSocket message: it was not valid JSON.",
                             code="invalid_json") from None
    if not isinstance(frame, dict):
        raise InvalidRequest("A WebSocket message must be a JSON object with a `type`.", param="type",
                             code="invalid_type")
    if frame.get("type") != "response.create":
        raise InvalidRequest(f"Invalid value: '{frame.get('type')}'. Supported values are: 'response.create'.",
                             param="type", code="invalid_value")
    if not isinstance(frame.get("stream_id", ""), str):
        raise InvalidRequest("Invalid type for 'stream_id': expected a string.", param="stream_id",
                             code="invalid_type")
    return frame


def _request(frame: dict[str, Any]) -> ResponseCreate:
    """The frame's body as the request `POST /v1/responses` would validate (strictly, with the same errors)."""
    if frame.get("background"):
        raise InvalidRequest("Background mode is not supported over WebSocket: create it with POST /v1/responses.",
                             param="background", code="unsupported_parameter")
    if frame.get("generate") is False:
        raise InvalidRequest("`generate: false` is not supported by this server: every response generates.",
                             param="generate", code="unsupported_parameter")
    body = {k: v for k, v in frame.items() if k not in FRAME_FIELDS}
    return parse_body(ResponseCreate, json.dumps(body).encode())


routes = [WebSocketRoute("/v1/responses", responses_socket)]
