"""A response's stream, recorded once while its run goes on, for every reader of it.

A recording listens to a response's run from the moment the response is made, turns the run's events into the
Responses API's (api/response_stream.py) and numbers them once: the stream that created the response, a client
resuming it with `starting_after` and a WebSocket all read the same events under the same sequence numbers, and a
reader that goes away stops nothing. The events are translated on the thread pool, a batch at a time (whatever
came while the last batch was handled), never on the event loop or on the run's own thread.

A background response's events are also stored (store/response_events.py), each batch before any reader sees it:
a stream resumed after the response ended, even after a restart, replays what its first reader saw, number for
number (`replay`). One whose run the server stopped mid-way is closed there from the response as stored. Only a
live recording is in memory: held by its readers and, while a background response runs, by `Recordings`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from offline_assistants.api.response_stream import ResponseEvents
from offline_assistants.engine import Engine
from offline_assistants.engine.events import Event, Listener, Subscription
from offline_assistants.errors import APIError, NotFound
from offline_assistants.schemas.responses import ResponseCreate

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Recording:
    """One response's events so far; `events[n]` has sequence_number n."""

    response_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    forget_when_ended: bool = False  # a `store: false` response: nothing of it is kept once it has ended
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, new: list[dict[str, Any]], *, finished: bool) -> None:
        self.events += new
        self.finished = self.finished or finished
        changed, self._changed = self._changed, asyncio.Event()  # each wait is for the next change
        changed.set()

    async def follow(self, after: int = -1) -> AsyncIterator[list[dict[str, Any]]]:
        """The events numbered after `after`, in batches as they come, up to the terminal one."""
        sent = max(after + 1, 0)
        while True:
            if sent < len(self.events):
                batch = self.events[sent:]
                sent += len(batch)
                yield batch
            elif self.finished:
                return
            else:
                await self._changed.wait()

    async def ended(self, timeout: float) -> None:
        """Wait until the terminal event is recorded, or `timeout` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.finished:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return


@dataclass(eq=False)
class _Recorder:
    """What records one response, on the thread pool: its run, the translation, whether to store, to forget."""

    engine: Engine
    response_id: str
    run_id: str
    events: ResponseEvents
    subscription: Subscription | None
    persist: bool  # a background response: stored, so its stream can be resumed
    shown: int = 0  # events handed to the readers: the next one's sequence number

    def feed(self, batch: list[Event]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in batch:
            if _run_of(event) not in (self.run_id, None):
                continue
            out += self.events.feed(event)
            if self.events.finished:
                break
        self.store(out)
        self.shown += len(out)
        return out

    def store(self, events: list[dict[str, Any]]) -> None:
        if self.persist:
            self.engine.store.response_events.append(self.response_id, events)

    def failure(self, exc: Exception) -> list[dict[str, Any]]:
        """The stream's last event when recording it failed (the response deleted while it ran, a server fault)."""
        if not isinstance(exc, APIError):
            log.exception("recording the stream of %s failed", self.response_id, exc_info=exc)
            exc = APIError("The server had an error while streaming this response.")
        self.events.finished = True
        last = [{"type": "error", "sequence_number": self.shown, "code": exc.code or exc.type,
                 "message": exc.message, "param": exc.param}]
        self.shown += 1
        return last


class Recordings:
    """The live recordings of background responses, by response id: where a resumed stream finds them."""

    def __init__(self) -> None:
        self._live: dict[str, Recording] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak references to tasks

    def live(self, response_id: str) -> Recording | None:
        return self._live.get(response_id)

    async def start(self, engine: Engine, req: ResponseCreate, include: tuple[str, ...], *,
                    forget: bool) -> Recording:
        """Create the response and record its stream from its first event; with `forget`, a `store: false` one is
        forgotten once it has ended. What create refuses (a 400, a 404) is raised here, before anything is
        recorded."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Event] = asyncio.Queue()

        def listener(event: Event) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, event)

        recorder, first = await run_in_threadpool(_begin, engine, req, include, listener)
        recording = Recording(recorder.response_id, first, forget_when_ended=forget and req.store is False)
        if recorder.persist:
            self._live[recording.response_id] = recording
        task = loop.create_task(self._record(recorder, recording, inbox))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return recording

    async def _record(self, recorder: _Recorder, recording: Recording, inbox: asyncio.Queue[Event]) -> None:
        try:
            while not recording.finished:
                batch = [await inbox.get()]
                while not inbox.empty():
                    batch.append(inbox.get_nowait())
                try:
                    new = await run_in_threadpool(recorder.feed, batch)
                except Exception as exc:  # noqa: BLE001 (said to the readers as the stream's last event)
                    new = recorder.failure(exc)
                    await run_in_threadpool(recorder.store, new)
                recording.add(new, finished=recorder.events.finished)
            # Read right after the end is recorded (no await between): whoever sets the flag later forgets itself.
            if recording.forget_when_ended:
                await run_in_threadpool(forget, recorder.engine, recording.response_id)
        finally:
            if recorder.subscription is not None:
                recorder.subscription.close()
            self._live.pop(recording.response_id, None)
            if not recording.finished:  # cancelled: the server is stopping; release the readers
                recording.add([], finished=True)


def _begin(engine: Engine, req: ResponseCreate, include: tuple[str, ...],
           listener: Listener) -> tuple[_Recorder, list[dict[str, Any]]]:
    response_id, sub = engine.responses.create(req, listener)
    try:
        thread_id, run_id = engine.responses.run_of(response_id)
        events = ResponseEvents(lambda: engine.responses.get(response_id, include).model_dump(mode="json"),
                                container_id=engine.responses.container_of(run_id) or "")
        recorder = _Recorder(engine, response_id, run_id, events, sub, persist=bool(req.background))
        # The first snapshot is taken now: by the time it is read the run may have moved on.
        first = events.start(background=bool(req.background))
        recorder.store(first)
        recorder.shown = len(first)
    except BaseException:
        if sub is not None:
            sub.close()
        raise
    return recorder, first


def forget(engine: Engine, response_id: str) -> None:
    """Forget a `store: false` response (its thread too, when nothing else uses it)."""
    try:
        engine.responses.forget(engine.store.responses.get(response_id))
    except NotFound:
        pass  # deleted by the client meanwhile


def replay(engine: Engine, response_id: str) -> list[dict[str, Any]]:
    """A background response's stored events, for a response no recording is live for.

    A stream the server stopped before its end (its run was ended at start-up) is closed first, once, from the
    response as stored: the events that close it are stored too, so every reader sees the same numbers.
    """
    response = engine.responses.get(response_id).model_dump(mode="json")
    last = engine.store.response_events.last(response_id)
    if response["status"] not in ("queued", "in_progress") and (last is None or not _terminal(last)):
        events = ResponseEvents(lambda: response, container_id="")
        closing = events.start(background=True) if last is None else []
        events.seq = len(closing) if last is None else last["sequence_number"] + 1
        engine.store.response_events.append(response_id, closing + events.close(response))
    return engine.store.response_events.after(response_id, -1)


def _terminal(event: dict[str, Any]) -> bool:
    return event["type"] in ("response.completed", "response.incomplete", "response.failed", "error")


def _run_of(event: Event) -> str | None:
    data = event.data
    if event.event.startswith("thread.run.step"):
        return data.get("run_id")
    if event.event.startswith("thread.run."):
        return data.get("id")
    return data.get("run_id")
