"""The truncation hot path (store/window.py): the window it picks, its hysteresis, and the token sums it relies on."""

from __future__ import annotations

from collections.abc import Callable

from offline_assistants.engine import Engine
from offline_assistants.llm.canned import CannedBackend
from offline_assistants.schemas.common import ListParams
from offline_assistants.schemas.messages import MessageCreate
from offline_assistants.schemas.threads import ThreadCreate
from offline_assistants.store import window as truncation
from offline_assistants.store.messages import unpack


def _thread(engine: Engine, n: int, words: int = 5) -> str:
    thread = engine.threads.create(ThreadCreate())
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        engine.threads.add_message(thread.id, MessageCreate(role=role, content=" ".join([f"m{i}"] * words)))
    return thread.id


def _sums_are_right(engine: Engine, thread_id: str) -> None:
    rows = engine.store.database.query(
        "SELECT n_tokens, cum_tokens, tokens FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,))
    running = 0
    for row in rows:
        assert row["n_tokens"] == len(unpack(row["tokens"]))
        running += row["n_tokens"]
        assert row["cum_tokens"] == running


def test_counts_are_stored_with_running_sums(make_engine: Callable[..., Engine]) -> None:
    backend = CannedBackend()
    engine = make_engine(backend)
    thread_id = _thread(engine, 10)
    _sums_are_right(engine, thread_id)
    first = engine.store.database.query_one("SELECT tokens FROM messages WHERE thread_id = ? AND seq = 1",
                                            (thread_id,))
    assert unpack(first["tokens"]) == backend.encode_message("user", "m0 m0 m0 m0 m0")  # type: ignore[index]


def test_sums_stay_right_after_deletes_and_edits(make_engine: Callable[..., Engine]) -> None:
    from offline_assistants.schemas.messages import MessageUpdate

    engine = make_engine(CannedBackend())
    thread_id = _thread(engine, 12)
    ids = [m.id for m in engine.threads.list_messages(thread_id, ListParams(order="asc", limit=100)).data]
    engine.threads.delete_message(thread_id, ids[3])
    engine.threads.delete_message(thread_id, ids[0])
    engine.threads.delete_message(thread_id, ids[-1])
    engine.threads.update_message(thread_id, ids[5], MessageUpdate(metadata={"k": "v"}))
    _sums_are_right(engine, thread_id)
    engine.threads.add_message(thread_id, MessageCreate(role="user", content="after the deletes"))
    _sums_are_right(engine, thread_id)


def _choose(engine: Engine, thread_id: str, budget: int, strategy=None, cut: int = 0) -> truncation.Window:  # noqa: ANN001
    return truncation.choose(engine.store.database, thread_id, budget, strategy=strategy, cut_seq=cut,
                             encode=engine.backend.encode_message)  # type: ignore[arg-type]


def test_everything_fits_keeps_everything(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend())
    thread_id = _thread(engine, 6)
    window = _choose(engine, thread_id, 10_000)
    assert window.messages == 6 and window.first_seq == 0 and window.cut_seq == 0


def test_last_messages_keeps_exactly_n(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend())
    thread_id = _thread(engine, 20)
    window = _choose(engine, thread_id, 10_000, {"type": "last_messages", "last_messages": 3})
    assert window.messages == 3 and window.first_seq == 18
    tail = engine.store.database.query(
        "SELECT tokens FROM messages WHERE thread_id = ? AND seq >= 18 ORDER BY seq", (thread_id,))
    assert window.tokens == [t for row in tail for t in unpack(row["tokens"])]


def test_auto_overflow_cuts_to_half_and_holds_the_cut(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend())
    thread_id = _thread(engine, 100)  # 9 tokens each: 900 tokens
    per = engine.store.database.query_one("SELECT n_tokens FROM messages LIMIT 1")["n_tokens"]  # type: ignore[index]
    window = _choose(engine, thread_id, 300)
    assert window.cut_seq == window.first_seq > 1
    assert len(window.tokens) <= 150 and len(window.tokens) > 150 - per
    # Next turn: two more messages, the same cut, so the prompt's prefix is unchanged.
    engine.threads.add_message(thread_id, MessageCreate(role="user", content="next"))
    again = _choose(engine, thread_id, 300, cut=window.cut_seq)
    assert again.first_seq == window.first_seq and again.tokens[: len(window.tokens)] == window.tokens
    # Only when the window is full again does the cut move, once more to half.
    for _ in range(20):
        engine.threads.add_message(thread_id, MessageCreate(role="user", content="a b c d e f g h"))
    moved = _choose(engine, thread_id, 300, cut=window.cut_seq)
    assert moved.first_seq > window.first_seq and len(moved.tokens) <= 150


def test_newest_message_alone_too_long_is_cut_from_the_left(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(CannedBackend())
    thread_id = _thread(engine, 1, words=400)
    window = _choose(engine, thread_id, 50)
    assert len(window.tokens) == 50 and window.messages == 1


def test_run_prompt_never_overflows_and_respects_max_prompt(make_engine: Callable[..., Engine]) -> None:
    from offline_assistants.schemas.assistants import AssistantCreate
    from offline_assistants.schemas.runs import RunCreate

    backend = CannedBackend(["fine"] * 3, n_ctx=256)
    engine = make_engine(backend)
    thread_id = _thread(engine, 200)
    assistant = engine.assistants.create(AssistantCreate(model="m", instructions="short"))
    run, _ = engine.runs.create(thread_id, RunCreate(assistant_id=assistant.id))
    assert engine.wait_idle(10)
    assert engine.runs.get(thread_id, run.id).status == "completed"
    assert len(backend.prompts[-1]) <= 256 - 256 // 4
    run, _ = engine.runs.create(thread_id, RunCreate(assistant_id=assistant.id, max_prompt_tokens=60))
    assert engine.wait_idle(10)
    done = engine.runs.get(thread_id, run.id)
    assert done.status == "completed" and done.usage is not None and done.usage.prompt_tokens <= 60
    run, _ = engine.runs.create(thread_id, RunCreate(assistant_id=assistant.id, max_prompt_tokens=3))
    assert engine.wait_idle(10)
    done = engine.runs.get(thread_id, run.id)
    assert done.status == "incomplete" and done.incomplete_details == {"reason": "max_prompt_tokens"}
    assert done.usage is not None and done.usage.prompt_tokens == 0


def test_bulk_append_stores_what_add_message_stores(make_engine: Callable[..., Engine]) -> None:
    """MessageStore.append_many (the truncation benchmark's bulk path) writes the rows add_message writes, then
    add_message carries on after them."""
    engine = make_engine(CannedBackend())
    one_by_one = _thread(engine, 6)
    bulk = engine.threads.create(ThreadCreate()).id
    engine.store.messages.append_many(bulk, [
        engine.threads.prepare(bulk, MessageCreate(role="user" if i % 2 == 0 else "assistant",
                                                   content=" ".join([f"m{i}"] * 5)))
        for i in range(5)])
    engine.threads.add_message(bulk, MessageCreate(role="assistant", content=" ".join(["m5"] * 5)))
    assert engine.store.messages.token_rows(bulk, last_seq=6) == engine.store.messages.token_rows(one_by_one,
                                                                                                   last_seq=6)
    assert engine.store.messages.count(bulk) == 6
    assert [m.text for m in engine.store.messages.texts(bulk, newest_first=True)][:2] == ["m5 m5 m5 m5 m5",
                                                                                           "m4 m4 m4 m4 m4"]
    _sums_are_right(engine, bulk)
