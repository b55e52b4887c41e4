"""The model process: forwarding, cancellation, crash detection and restart, and a child that dies at load.

Children here are real processes. Most run the small loaders in tests/faulty_models.py (fast and predictable);
one test compares the real model through the process with the same model in this process, token for token."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline_assistants.llm.backend import Finish, ModelError, Piece, Sampling
from offline_assistants.llm.messages import ChildSpec
from offline_assistants.llm.process import LoadFailed, ModelCrashed, ModelProcess, describe_exit

COUNTING = "faulty_models:counting"


@pytest.fixture
def make_process() -> Iterator[type[ModelProcess]]:
    made: list[ModelProcess] = []

    def factory(loader: str, *, retry_after_s: float = 60.0, **options: object) -> ModelProcess:
        process = ModelProcess(ChildSpec(dict(options), loader=loader), retry_after_s=retry_after_s)
        made.append(process)
        return process

    yield factory  # type: ignore[misc]
    for process in made:
        process.close()


def run(process: ModelProcess, max_tokens: int = 5, cancel_after: int | None = None) -> tuple[str, Finish]:
    text, finish = "", None
    seen = 0

    def cancelled() -> bool:
        return cancel_after is not None and seen >= cancel_after

    for item in process.generate([1, 2, 3], Sampling(max_tokens=max_tokens), cache_key="t", cancelled=cancelled):
        if isinstance(item, Piece):
            seen += 1
            text += item.text
        else:
            finish = item
    assert finish is not None
    return text, finish


def test_the_model_process_yields_the_cpu_and_leaves_ctrl_c_to_the_server(make_process) -> None:  # noqa: ANN001
    process = make_process(COUNTING)
    process.wait_ready(30)
    assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 19)
    os.kill(process.pid, signal.SIGINT)  # as Ctrl-C sends it to the whole group
    assert run(process, max_tokens=3)[0] == "0 1 2 "  # still serving, no restart
    assert process.crashes == 0


def test_generation_is_forwarded_piece_by_piece(make_process) -> None:  # noqa: ANN001
    process = make_process(COUNTING)
    assert process.wait_ready(30)["n_ctx"] == 1024
    text, finish = run(process, max_tokens=5)
    assert text == "0 1 2 3 4 " and finish == Finish("length", 3, 5)


def test_cancel_stops_the_child_between_tokens(make_process) -> None:  # noqa: ANN001
    process = make_process(COUNTING, delay_s=0.01)
    text, finish = run(process, max_tokens=10_000, cancel_after=3)
    assert text == "0 1 2 " and finish.reason == "cancelled" and finish.completion_tokens == 3
    # The child is free again at once: it did not write the other 9,997 tokens.
    started = time.monotonic()
    assert run(process, max_tokens=2)[0] == "0 1 "
    assert time.monotonic() - started < 5


def test_a_caller_that_stops_reading_leaves_the_child_in_step(make_process) -> None:  # noqa: ANN001
    process = make_process(COUNTING, delay_s=0.01)
    stream = process.generate([1], Sampling(max_tokens=10_000), cache_key=None, cancelled=lambda: False)
    assert isinstance(next(stream), Piece)
    stream.close()  # as when the executor raises mid-stream
    assert run(process, max_tokens=3) == ("0 1 2 ", Finish("length", 3, 3))


def test_a_killed_child_fails_the_call_with_its_signal_and_is_restarted(make_process) -> None:  # noqa: ANN001
    process = make_process(COUNTING, delay_s=0.01)
    process.wait_ready(30)
    first = process.pid
    stream = process.generate([1], Sampling(max_tokens=10_000), cache_key=None, cancelled=lambda: False)
    next(stream)
    os.kill(first, signal.SIGKILL)  # as the OOM killer does
    with pytest.raises(ModelCrashed) as crash:
        for _ in stream:
            pass
    assert str(crash.value) == "the model process crashed (SIGKILL); it was restarted"
    assert process.pid != first and process.crashes == 1
    assert run(process, max_tokens=2)[0] == "0 1 "


def test_a_real_segfault_in_generation(make_process) -> None:  # noqa: ANN001
    process = make_process(COUNTING, segfault_after=2)
    with pytest.raises(ModelCrashed, match=r"crashed \(SIGSEGV\); it was restarted"):
        run(process, max_tokens=10)


def test_a_child_that_aborts_at_load_is_given_up_on_instead_of_looping(make_process) -> None:  # noqa: ANN001
    process = make_process("faulty_models:abort_at_load", retry_after_s=0.5)
    started = time.monotonic()
    with pytest.raises(LoadFailed) as failure:
        process.wait_ready(30)
    assert failure.value.crashed and failure.value.reason == "SIGABRT"
    assert "crashed while loading the model (SIGABRT), 3 times in a row" in str(failure.value)
    assert process.pid is None  # nothing left running
    # Within the pause, calls fail at once with the same reason and start nothing.
    spawned_before = time.monotonic()
    with pytest.raises(LoadFailed, match="SIGABRT"):
        run(process)
    assert time.monotonic() - spawned_before < 0.2 and process.pid is None
    # After it, one new attempt (which fails the same way).
    time.sleep(0.6)
    with pytest.raises(LoadFailed, match="SIGABRT"):
        process.wait_ready(30)
    assert time.monotonic() - started < 30


def test_a_load_error_is_not_retried(make_process) -> None:  # noqa: ANN001
    process = make_process("faulty_models:error_at_load")
    with pytest.raises(LoadFailed) as failure:
        process.wait_ready(30)
    assert not failure.value.crashed
    assert str(failure.value).startswith("the model could not be loaded: not a GGUF file;")


def test_a_segfault_at_load_is_reported_as_such(make_process) -> None:  # noqa: ANN001
    process = make_process("faulty_models:segfault_at_load", retry_after_s=0.0)
    process.max_load_failures = 1
    with pytest.raises(LoadFailed) as failure:
        process.wait_ready(30)
    assert failure.value.reason == "SIGSEGV"


def test_on_crash_may_change_what_the_next_child_loads(make_process, tmp_path: Path) -> None:  # noqa: ANN001
    process = make_process(COUNTING, delay_s=0.01, segfault_after=1)
    seen: list[str] = []

    def on_crash(spec: ChildSpec, reason: str) -> ChildSpec:
        seen.append(reason)
        return spec.replace(segfault_after=None)

    process.on_crash = on_crash
    with pytest.raises(ModelCrashed):
        run(process, max_tokens=5)
    assert seen == ["SIGSEGV"]
    assert run(process, max_tokens=3)[0] == "0 1 2 "


def test_describe_exit() -> None:
    assert describe_exit(-11) == "SIGSEGV" and describe_exit(-6) == "SIGABRT" and describe_exit(3) == "exit status 3"


def test_the_model_through_the_process_matches_it_in_process(real_backend) -> None:  # noqa: ANN001
    # The reference: llama-cpp-python's own Llama.generate, greedy, on the same file with the same settings
    # (flash attention on, as llm/batch.py decodes).
    from llama_cpp import Llama

    from offline_assistants.llm.llama_params import model_params

    prompt = (real_backend.encode_system("Be brief.") + real_backend.encode_message("user", "Name three colours.")
              + real_backend.generation_prefix())
    sampling = Sampling(temperature=0.0, max_tokens=24)
    through = [i.token for i in real_backend.generate(prompt, sampling, cache_key="compare") if isinstance(i, Piece)]
    with model_params(real_backend.cpu_repack):
        local = Llama(str(real_backend.path), n_ctx=512, n_threads=real_backend.n_threads,
                      n_threads_batch=real_backend.n_threads, flash_attn=True, verbose=False)
    here = []
    for token in local.generate(prompt, temp=0.0, top_k=1, min_p=0.0, repeat_penalty=1.0):
        if llama_cpp_is_end(local, token) or len(here) == len(through):
            break
        here.append(token)
    assert through == here and through


def llama_cpp_is_end(llm: object, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))  # type: ignore[attr-defined]


def test_cancel_mid_generation_on_the_model(real_backend) -> None:  # noqa: ANN001
    prompt = real_backend.encode_message("user", "Count from 1 to 500.") + real_backend.generation_prefix()
    pieces = 0

    def cancelled() -> bool:
        return pieces >= 4

    finish = None
    for item in real_backend.generate(prompt, Sampling(temperature=0.0, max_tokens=400), cancelled=cancelled):
        if isinstance(item, Piece):
            pieces += 1
        else:
            finish = item
    assert finish is not None and finish.reason == "cancelled" and pieces == 4 == finish.completion_tokens


def test_the_model_error_type_is_what_the_executor_reports() -> None:
    assert issubclass(ModelCrashed, ModelError) and issubclass(LoadFailed, ModelError)
