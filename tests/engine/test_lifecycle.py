"""The run state machine's table (engine/lifecycle.py), walked whole, and the promises it keeps on a scripted
model: endings stamp, clear and announce; a queued run cancels at once; a run past expires_at expires even while
it executes; start-up recovery ends runs as every other ending does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from test_run_lifecycle import wait_done

from offline_assistants.config import Settings
from offline_assistants.engine import Engine
from offline_assistants.engine.events import Event
from offline_assistants.engine.lifecycle import RUN_EVENTS, IllegalTransition
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.common import ListParams
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import ACTIVE_STATUSES, TERMINAL_STATUSES, TRANSITIONS, RunCreate
from offline_assistants.schemas.threads import ThreadCreate


def stored_run(engine: Engine, status: str, **values: Any) -> tuple[str, str]:
    """A run written straight into the store in `status`, with nothing executing it (the worker is stopped)."""
    engine.worker.stop()
    assistant = engine.assistants.create(AssistantCreate(model="gpt-4o"))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="hi")]))
    run, _ = engine.runs.create(thread.id, RunCreate(assistant_id=assistant.id))
    engine.store.runs.update(run.id, {"status": status, "expires_at": run.created_at + 600, **values})
    return thread.id, run.id


def test_the_table_names_every_status_and_ends_only_in_terminal_ones() -> None:
    assert set(TRANSITIONS) == set(ACTIVE_STATUSES) | set(TERMINAL_STATUSES) == set(RUN_EVENTS)
    assert {s for s, nexts in TRANSITIONS.items() if not nexts} == set(TERMINAL_STATUSES)
    for nexts in TRANSITIONS.values():
        assert nexts <= set(TRANSITIONS)


@pytest.mark.parametrize("current", sorted(TRANSITIONS))
def test_every_move_of_the_table_is_allowed_or_refused_as_it_says(
        make_engine: Callable[..., Engine], current: str) -> None:
    for to in sorted(TRANSITIONS):
        engine = make_engine()
        thread_id, run_id = stored_run(engine, current)
        events: list[Event] = []
        engine.bus.subscribe(thread_id, events.append)
        if to not in TRANSITIONS[current]:  # type: ignore[index]
            with pytest.raises(IllegalTransition):
                engine.runs.lifecycle.move(run_id, to)  # type: ignore[arg-type]
            assert engine.runs.get(thread_id, run_id).status == current and events == []
            continue
        moved = engine.runs.lifecycle.move(run_id, to)  # type: ignore[arg-type]
        assert moved is not None and moved.status == to
        assert [e.event for e in events] == [RUN_EVENTS[to]]  # type: ignore[index]
        assert events[0].data["status"] == to
        if to in TERMINAL_STATUSES:
            assert moved.expires_at is None and moved.required_action is None
        stamp = {"completed": moved.completed_at, "failed": moved.failed_at, "cancelled": moved.cancelled_at,
                 "in_progress": moved.started_at}.get(to, 0)
        assert stamp is not None


def test_an_ending_closes_open_steps_and_announces_them_first(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    thread_id, run_id = stored_run(engine, "in_progress")
    run = engine.runs.get(thread_id, run_id)
    engine.store.runs.insert_step({
        "id": "step_open", "run_id": run_id, "thread_id": thread_id, "assistant_id": run.assistant_id,
        "created_at": run.created_at, "type": "tool_calls", "status": "in_progress",
        "step_details": {"type": "tool_calls", "tool_calls": []}, "metadata": {}})
    events: list[Event] = []
    engine.bus.subscribe(thread_id, events.append)
    error = {"code": "server_error", "message": "boom"}
    engine.runs.lifecycle.move(run_id, "failed", {"last_error": error})
    assert [e.event for e in events] == ["thread.run.step.failed", "thread.run.failed"]
    step = engine.runs.list_steps(thread_id, run_id, ListParams()).data[0]
    assert step.status == "failed" and step.failed_at and step.last_error == error


def test_a_route_that_declines_writes_nothing(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    thread_id, run_id = stored_run(engine, "requires_action")
    assert engine.runs.lifecycle.move(run_id, lambda run: None) is None
    assert engine.runs.get(thread_id, run_id).status == "requires_action"


def test_cancelling_a_queued_run_ends_it_at_once(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    thread_id, run_id = stored_run(engine, "queued")
    events: list[Event] = []
    engine.bus.subscribe(thread_id, events.append)
    cancelled = engine.runs.cancel(thread_id, run_id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at and cancelled.expires_at is None
    assert [e.event for e in events] == ["thread.run.cancelled"]


def test_a_run_executing_past_expires_at_is_expired_and_its_generation_stopped(
        make_engine: Callable[..., Engine]) -> None:
    reply = " ".join(f"word{i}" for i in range(400))  # no repeats: the loop guard must not end it first
    backend = CannedBackend([reply], delay_s=0.01)
    engine = make_engine(backend, run_expiry_s=1)
    assistant = engine.assistants.create(AssistantCreate(model="gpt-4o"))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="hi")]))
    run, _ = engine.runs.create(thread.id, RunCreate(assistant_id=assistant.id))
    started = time.monotonic()
    assert wait_done(engine, thread.id, run.id, timeout=10) == "expired"
    assert time.monotonic() - started < 3.5  # 400 words at 10 ms would take 4 s: it was stopped at expiry
    ended = engine.runs.get(thread.id, run.id)
    assert ended.expires_at is None
    message = engine.threads.list_messages(thread.id, ListParams(), run_id=run.id).data[0]
    assert message.status == "incomplete"
    assert 0 < len(message.content[0]["text"]["value"]) < len(reply)
    step = engine.runs.list_steps(thread.id, run.id, ListParams()).data[0]
    assert step.status in ("cancelled", "expired")


def test_recovery_at_start_up_ends_runs_through_the_lifecycle(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    thread_q, queued = stored_run(engine, "queued")
    engine.store.runs.update(queued, {"status": "queued"})
    data_dir = engine.settings.data_dir
    engine.store.close()
    again = Engine(Settings(data_dir=data_dir), CannedBackend())
    try:
        run = again.runs.get(thread_q, queued)
        assert run.status == "expired" and run.expires_at is None
        assert run.last_error is not None and run.last_error["code"] == "server_error"
    finally:
        again.close()
