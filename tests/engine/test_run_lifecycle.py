"""The run state machine, exactly, on a scripted model (the real-model behaviour is tested in tests/api)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from offline_assistants.engine import Engine
from offline_assistants.engine.events import Event
from offline_assistants.errors import Conflict
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.assistants import AssistantCreate
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.runs import RunCreate
from offline_assistants.schemas.threads import ThreadCreate


def setup(engine: Engine, text: str = "hi") -> tuple[str, str]:
    assistant = engine.assistants.create(AssistantCreate(model="gpt-4o", instructions="Be brief."))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content=text)]))
    return assistant.id, thread.id


def wait_done(engine: Engine, thread_id: str, run_id: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = engine.runs.get(thread_id, run_id)
        if run.status not in ("queued", "in_progress", "cancelling"):
            return run.status
        time.sleep(0.01)
    raise AssertionError("run did not finish")


def test_completed_run_has_timestamps_usage_step_and_message(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend(["Hello there friend."]))
    asst, thread = setup(engine)
    run, _ = engine.runs.create(thread, RunCreate(assistant_id=asst))
    assert run.status == "queued" and run.usage is None
    assert run.expires_at == run.created_at + 600
    assert wait_done(engine, thread, run.id) == "completed"
    run = engine.runs.get(thread, run.id)
    assert run.started_at and run.completed_at and run.usage is not None and run.expires_at is None
    assert run.usage.completion_tokens == 3
    assert run.usage.total_tokens == run.usage.prompt_tokens + 3
    steps = engine.runs.list_steps(thread, run.id, _params()).data
    assert [s.type for s in steps] == ["message_creation"] and steps[0].status == "completed"
    assert steps[0].usage is not None and steps[0].usage.completion_tokens == 3
    message_id = steps[0].step_details["message_creation"]["message_id"]
    message = engine.threads.get_message(thread, message_id)
    assert message.content[0]["text"]["value"] == "Hello there friend."
    assert message.run_id == run.id and message.assistant_id == asst and message.status == "completed"


def _params():  # noqa: ANN202
    from offline_assistants.schemas.common import ListParams

    return ListParams(order="asc")


def test_events_in_the_real_order(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend(["a b c"]))
    asst, thread = setup(engine)
    events: list[Event] = []
    done = threading.Event()

    def listen(event: Event) -> None:
        events.append(event)
        if event.event == "thread.run.completed":
            done.set()

    engine.runs.create(thread, RunCreate(assistant_id=asst), listen)
    assert done.wait(10)
    names = [e.event for e in events]
    assert names == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress",
        "thread.message.created", "thread.message.in_progress",
        "thread.message.delta", "thread.message.delta", "thread.message.delta",
        "thread.message.completed", "thread.run.step.completed", "thread.run.completed",
    ]
    deltas = "".join(e.data["delta"]["content"][0]["text"]["value"] for e in events
                     if e.event == "thread.message.delta")
    assert deltas == events[-3].data["content"][0]["text"]["value"] == "a b c"


def test_one_active_run_per_thread_and_no_messages_meanwhile(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["slow " * 50], delay_s=0.02)
    engine = make_engine(backend)
    asst, thread = setup(engine)
    run, _ = engine.runs.create(thread, RunCreate(assistant_id=asst))
    with pytest.raises(Conflict) as second:
        engine.runs.create(thread, RunCreate(assistant_id=asst))
    assert second.value.message == f"Thread {thread} already has an active run {run.id}."
    with pytest.raises(Conflict) as add:
        engine.threads.add_message(thread, MessageCreate(role="user", content="more"))
    assert add.value.message == f"Can't add messages to {thread} while a run {run.id} is active."
    engine.runs.cancel(thread, run.id)
    assert wait_done(engine, thread, run.id) == "cancelled"
    engine.threads.add_message(thread, MessageCreate(role="user", content="now it works"))


def test_cancel_mid_generation_keeps_partial_message(make_engine: Callable[..., Engine]) -> None:
    reply = " ".join(f"word{i}" for i in range(200))  # no repeats: the loop guard must not end it before the cancel
    backend = CannedBackend([reply], delay_s=0.01)
    engine = make_engine(backend)
    asst, thread = setup(engine)
    run, _ = engine.runs.create(thread, RunCreate(assistant_id=asst))
    assert backend.started.wait(5)
    time.sleep(0.1)
    cancelling = engine.runs.cancel(thread, run.id)
    assert cancelling.status == "cancelling"
    assert wait_done(engine, thread, run.id) == "cancelled"
    run = engine.runs.get(thread, run.id)
    assert run.cancelled_at is not None and run.usage is not None
    messages = engine.threads.list_messages(thread, _params(), run_id=run.id).data
    assert len(messages) == 1
    partial = messages[0]
    assert partial.status == "incomplete" and partial.incomplete_details == {"reason": "run_cancelled"}
    assert 0 < len(partial.content[0]["text"]["value"]) < len(reply)
    step = engine.runs.list_steps(thread, run.id, _params()).data[0]
    assert step.status == "cancelled" and step.cancelled_at


def test_cancel_queued_run(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend([" ".join(f"x{i}" for i in range(100)), "y"], delay_s=0.02)  # no repeats: no loop stop
    engine = make_engine(backend)
    asst, t1 = setup(engine)
    _, t2 = setup(engine)
    busy, _ = engine.runs.create(t1, RunCreate(assistant_id=asst))
    queued, _ = engine.runs.create(t2, RunCreate(assistant_id=asst))
    assert backend.started.wait(5)
    engine.runs.cancel(t2, queued.id)
    engine.runs.cancel(t1, busy.id)
    assert wait_done(engine, t2, queued.id) == "cancelled"
    assert engine.runs.get(t2, queued.id).started_at is None


def test_max_completion_tokens_ends_incomplete(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend(["one two three four five six"]))
    asst, thread = setup(engine)
    run, _ = engine.runs.create(thread, RunCreate(assistant_id=asst, max_completion_tokens=3))
    assert wait_done(engine, thread, run.id) == "incomplete"
    run = engine.runs.get(thread, run.id)
    assert run.incomplete_details is not None and run.incomplete_details.get("reason") == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens == 3
    message = engine.threads.list_messages(thread, _params(), run_id=run.id).data[0]
    assert message.status == "incomplete" and message.incomplete_details == {"reason": "max_tokens"}


def test_model_failure_fails_the_run_and_unlocks_the_thread(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend(fail_with="decode failed"))
    asst, thread = setup(engine)
    run, _ = engine.runs.create(thread, RunCreate(assistant_id=asst))
    assert wait_done(engine, thread, run.id) == "failed"
    run = engine.runs.get(thread, run.id)
    assert run.last_error == {"code": "server_error", "message": "decode failed"} and run.failed_at
    engine.threads.add_message(thread, MessageCreate(role="user", content="still usable"))


def test_instructions_and_additional_parts_reach_the_prompt(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend(["ok"])
    engine = make_engine(backend)
    asst, thread = setup(engine, "first")
    run, _ = engine.runs.create(thread, RunCreate(
        assistant_id=asst, instructions="Override.", additional_instructions="Also this.",
        additional_messages=[MessageCreate(role="user", content="extra message")], model="gpt-4o-mini",
        temperature=0.0, top_p=0.5,
    ))
    assert run.model == "gpt-4o-mini" and run.instructions == "Override.\n\nAlso this."
    assert wait_done(engine, thread, run.id) == "completed"
    prompt = backend.text(backend.prompts[0])
    assert "Override." in prompt and "Also this." in prompt and "Be brief." not in prompt
    assert prompt.index("first") < prompt.index("extra message")
    assert backend.samplings[0].temperature == 0.0 and backend.samplings[0].top_p == 0.5


def test_restart_recovery_ends_runs_left_in_progress(make_engine: Callable[..., Engine], tmp_path) -> None:  # noqa: ANN001
    from offline_assistants.config import Settings

    backend = CannedBackend(["z " * 500], delay_s=0.05)
    engine = make_engine(backend)
    asst, thread = setup(engine)
    run, _ = engine.runs.create(thread, RunCreate(assistant_id=asst))
    assert backend.started.wait(5)
    # Simulate a crash: the worker is gone, the database still says in_progress.
    engine.control.request_cancel(run.id)  # stop the scripted generation quietly
    engine.worker.stop()
    engine.store.runs.update(run.id, {"status": "in_progress", "cancelled_at": None})
    engine.store.database.db.execute("UPDATE messages SET status='in_progress' WHERE run_id = ?", (run.id,))
    data_dir = engine.settings.data_dir
    engine.store.close()
    again = Engine(Settings(data_dir=data_dir), CannedBackend(["fresh"]))
    try:
        recovered = again.runs.get(thread, run.id)
        assert recovered.status == "failed"
        assert recovered.last_error is not None and recovered.last_error["code"] == "server_error"
        second, _ = again.runs.create(thread, RunCreate(assistant_id=asst))
        assert wait_done(again, thread, second.id) == "completed"
    finally:
        again.close()


def test_queued_and_waiting_runs_expire(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend([" call f.", "{}"]), run_expiry_s=1)
    assistant = engine.assistants.create(AssistantCreate.model_validate(
        {"model": "m", "tools": [{"type": "function", "function": {"name": "f"}}]}))
    thread = engine.threads.create(ThreadCreate(messages=[MessageCreate(role="user", content="go")]))
    run, _ = engine.runs.create(thread.id, RunCreate(assistant_id=assistant.id, tool_choice="required"))
    deadline = time.monotonic() + 10
    while engine.runs.get(thread.id, run.id).status != "expired" and time.monotonic() < deadline:
        time.sleep(0.1)
    expired = engine.runs.get(thread.id, run.id)
    assert expired.status == "expired" and expired.required_action is None
    step = engine.runs.list_steps(thread.id, run.id, _params()).data[0]
    assert step.status == "expired" and step.expired_at is not None
    engine.threads.add_message(thread.id, MessageCreate(role="user", content="the thread is free again"))
