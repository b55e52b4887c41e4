"""The model in a child process the engine owns, behind the same `ModelBackend` the engine always sees.

llama.cpp is C++: a segfault, an `abort()` from a `GGML_ASSERT` or the OOM killer ends whatever process it runs
in. Here that process is a child (llm/child.py). When it dies, the one run that was using it fails with the
signal as its reason, a new child is started, and queued runs go on; the HTTP server never noticed. The
tokenizer stays in this process (llm/llama.py's LlamaTokenizer), so storing a message never waits on the child.

`ModelProcess` supervises one child: start, wait until loaded, forward generations, detect death, restart, and
stop restarting a child that keeps dying while it loads. `ProcessBackend` is the ModelBackend on top of it.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from offline_assistants.llm.backend import Finish, ModelError, Sampling, Stream
from offline_assistants.llm.llama import LlamaTokenizer
from offline_assistants.llm.messages import (
    Cancel,
    ChildSpec,
    Failed,
    Finished,
    Generate,
    Generated,
    LoadError,
    Ready,
    Replies,
    Reply,
    Request,
    Score,
    Scored,
    Start,
    Stop,
)
from offline_assistants.llm.tokens import TokenizedBackend

log = logging.getLogger(__name__)


class ModelCrashed(ModelError):
    """The model process died; `reason` is the signal (SIGSEGV) or exit status."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class LoadFailed(ModelError):
    """The model process could not load the model: it died (`crashed`, with the signal as `reason`) or the
    loader reported an error (a bad file), which no retry will mend."""

    def __init__(self, message: str, *, crashed: bool, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.crashed = crashed
        self.reason = reason


@dataclass(frozen=True)
class _Crashed:
    """What the reader thread tells each waiting caller when the child died (never sent over the socket)."""

    message: str
    reason: str


class ModelProcess:
    """One supervised model child. Safe to call from several threads at once: each request gets an id, and one
    reader thread per child hands each reply to the caller waiting for it. When the child dies, every request
    in flight fails with the reason and a new child starts."""

    def __init__(
        self,
        spec: ChildSpec,
        *,
        max_load_failures: int = 3,
        retry_after_s: float = 60.0,
        load_timeout_s: float | None = None,
        on_crash: Callable[[ChildSpec, str], ChildSpec] | None = None,
        quiet: bool = False,
    ) -> None:
        self.spec = spec
        self.quiet = quiet  # a probe expects to crash: no log lines, and the child's stderr is discarded
        self.max_load_failures = max_load_failures
        self.retry_after_s = retry_after_s
        self.load_timeout_s = load_timeout_s
        self.on_crash = on_crash  # may return another spec for the restart (llm/repack.py turns repacking off)
        self.info: dict[str, Any] | None = None  # what the loaded child reported
        self.crashes = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._load_failures = 0
        self._broken: str | None = None
        self._broken_by_crash = False
        self._retry_at = 0.0
        self._next_req = 0
        self._lock = threading.RLock()  # the child, its socket and the waiting callers change together
        self._inboxes: dict[int, queue.Queue[Reply | _Crashed]] = {}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # --- life ---
    def start(self) -> None:
        """Start a child; it loads in the background. `wait_ready` waits for it."""
        parent, child = multiprocessing.Pipe(duplex=True)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "offline_assistants.llm.child", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL if self.quiet else None,
            )
        finally:
            child.close()
        self._conn = parent
        self.info = None
        parent.send(Start(self.spec))

    def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until the child has loaded; restart one that died while loading, up to max_load_failures in a
        row. After that, or after a load error, raise ModelError with the reason until retry_after_s passed."""
        with self._lock:
            return self._wait_ready(timeout)

    def _wait_ready(self, timeout: float | None) -> dict[str, Any]:
        while self.info is None:
            if self._broken is not None:
                if time.monotonic() < self._retry_at:
                    raise LoadFailed(self._broken, crashed=self._broken_by_crash)
                self._broken = None  # one more try after the pause
            if self._conn is None:
                self.start()
            try:
                self.info = self._await_ready(timeout if timeout is not None else self.load_timeout_s)
                self._start_reader()
            except LoadFailed as failure:
                self._load_failures += 1
                self._discard()
                if failure.crashed and self.on_crash is not None:
                    self.spec = self.on_crash(self.spec, failure.reason)
                if failure.crashed and self._load_failures < self.max_load_failures:
                    if not self.quiet:
                        log.warning("%s; starting it again (attempt %d of %d)", failure.message,
                                    self._load_failures + 1, self.max_load_failures)
                    continue
                times = f", {self._load_failures} times in a row" if self._load_failures > 1 else ""
                self._broken = (f"{failure.message}{times}; the next attempt to load it is made when a run needs "
                                f"it, no sooner than {self.retry_after_s:.0f}s from now")
                self._broken_by_crash = failure.crashed
                self._retry_at = time.monotonic() + self.retry_after_s
                if not self.quiet:
                    log.error("%s", self._broken)
                raise LoadFailed(self._broken, crashed=failure.crashed, reason=failure.reason) from None
        self._load_failures = 0
        return self.info

    def _await_ready(self, timeout: float | None) -> dict[str, Any]:
        assert self._conn is not None and self._proc is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._conn.poll(0.25):
            if deadline is not None and time.monotonic() > deadline:
                self._proc.kill()
                raise LoadFailed(f"the model process did not load within {timeout:.0f}s", crashed=True,
                             reason="timeout")
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            reason = self._reap()
            raise LoadFailed(f"the model process crashed while loading the model ({reason})", crashed=True,
                             reason=reason) from None
        match message:
            case Ready(info):
                return info
            case LoadError(error):
                raise LoadFailed(f"the model could not be loaded: {error}", crashed=False)
        raise LoadFailed(f"the model process said {message!r} instead of being ready", crashed=False)

    def _reap(self) -> str:
        assert self._proc is not None
        try:
            returncode = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # the socket closed but the process lingers: finish it
            self._proc.kill()
            returncode = self._proc.wait()
        return describe_exit(returncode)

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._conn = None
        self._proc = None
        self.info = None

    def _crashed(self) -> ModelCrashed:
        """The child died mid-call: reap it, start the next one (it loads while the failed run is settled)."""
        reason = self._reap()
        self.crashes += 1
        self._discard()
        if self.on_crash is not None:
            self.spec = self.on_crash(self.spec, reason)
        log.error("the model process crashed (%s); restarting it", reason)
        self.start()
        return ModelCrashed(f"the model process crashed ({reason}); it was restarted", reason)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(Stop())
                except OSError:
                    pass
            if self._proc is not None:
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self._discard()
            boxes = list(self._inboxes.values())
            self._inboxes.clear()
        for box in boxes:
            box.put(Failed(0, "the model process was stopped"))

    # --- calls: many callers at once, one reader thread routing the child's replies by request id ---
    def _request(self, make: Callable[[int], Request]) -> tuple[int, queue.Queue[Reply | _Crashed], Connection]:
        """Send one request (`make` given its id) to a loaded child; its replies arrive on the returned queue."""
        with self._lock:
            self.wait_ready()
            assert self._conn is not None
            self._next_req += 1
            req, conn = self._next_req, self._conn
            box: queue.Queue[Reply | _Crashed] = queue.Queue()
            self._inboxes[req] = box
            try:
                conn.send(make(req))
            except OSError:
                pass  # the child is gone: the reader sees the end of the socket and tells every waiting caller
            return req, box, conn

    def _done(self, req: int) -> None:
        with self._lock:
            self._inboxes.pop(req, None)

    def _cancel(self, req: int, conn: Connection) -> None:
        with self._lock:
            if self._conn is conn:
                try:
                    conn.send(Cancel(req))
                except OSError:
                    pass

    def _start_reader(self) -> None:
        assert self._conn is not None and self._proc is not None
        threading.Thread(target=self._read, args=(self._conn,), name="offline-assistants-model-reader",
                         daemon=True).start()

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if not isinstance(message, Replies):
                continue
            for reply in message.items:
                with self._lock:
                    box = self._inboxes.get(reply.req)
                if box is not None:
                    box.put(reply)
        with self._lock:
            if self._conn is not conn:
                return  # closed on purpose (close(), or a caller already replaced it)
            crash = self._crashed()
            boxes = list(self._inboxes.values())
            self._inboxes.clear()
        for box in boxes:  # every request in flight fails; the next ones go to the new child
            box.put(_Crashed(str(crash), crash.reason))

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None,
                 cancelled: Callable[[], bool]) -> Stream:
        req, box, conn = self._request(lambda req: Generate(req, list(prompt), sampling, cache_key))
        yielded = 0
        cancel_sent = ended = False
        try:
            while True:
                match box.get():
                    case Generated(_, piece):
                        if cancel_sent:
                            continue  # already in flight when we asked it to stop: the caller has moved on
                        yielded += 1
                        yield piece
                        if cancelled():
                            self._cancel(req, conn)
                            cancel_sent = True
                    case Finished(_, finish):
                        ended = True
                        if cancel_sent:
                            yield Finish("cancelled", finish.prompt_tokens, yielded, finish.kv_switch_ms)
                        else:
                            yield finish
                        return
                    case _Crashed(message, reason):
                        ended = True
                        raise ModelCrashed(message, reason)
                    case Failed(_, error):
                        ended = True
                        raise ModelError(error)
                    case other:
                        ended = True
                        raise ModelError(f"the model process answered a generation with {other!r}")
        finally:
            self._done(req)
            if not ended and not cancel_sent:
                self._cancel(req, conn)  # the caller stopped reading (an exception, or it had enough)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None) -> list[float]:
        req, box, _conn = self._request(lambda req: Score(req, list(prompt), [list(o) for o in options], cache_key))
        try:
            reply = box.get()
        finally:
            self._done(req)
        match reply:
            case Scored(_, scores):
                return list(scores)
            case _Crashed(message, reason):
                raise ModelCrashed(message, reason)
            case Failed(_, error):
                raise ModelError(error)
            case other:
                raise ModelError(f"the model process answered a score with {other!r}")


class ProcessBackend(TokenizedBackend):
    """A ModelBackend whose generation runs in a supervised child process; tokenizing stays here."""

    steers_answers = True  # llm/batch.py applies Sampling.answer
    gives_logprobs = True  # llm/batch.py reads them off the logits

    def __init__(self, tokenizer: LlamaTokenizer, spec: ChildSpec, *, wait: bool = True,
                 max_load_failures: int = 3, retry_after_s: float = 60.0,
                 on_crash: Callable[[ChildSpec, str], ChildSpec] | None = None) -> None:
        super().__init__(tokenizer)
        self.path = tokenizer.path
        requested = int(spec.options.get("n_ctx", 4096))
        self.n_ctx = requested or tokenizer.trained_context() or 4096
        self.n_threads = int(spec.options.get("n_threads", 1))
        # Several runs at once when the child decodes several sequences together (llm/batch.py, `parallel`).
        self.parallel = int(spec.options.get("parallel", 1)) > 1
        self.process = ModelProcess(spec, max_load_failures=max_load_failures, retry_after_s=retry_after_s,
                                    on_crash=on_crash)
        self.process.start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        info = self.process.wait_ready(timeout)  # ModelProcess's own lock serialises start-up
        self._adopt(info)
        return info

    def _adopt(self, info: dict[str, Any]) -> None:
        self.n_ctx = min(self.n_ctx, int(info.get("n_ctx", self.n_ctx)))
        self.scores_together = int(info.get("score_width", 1)) > 1

    @property
    def gpu_layers(self) -> int:
        return int((self.process.info or {}).get("gpu_layers", 0))

    @property
    def cpu_repack(self) -> bool:
        """Whether the running child repacks weights (a crash in auto mode may have turned it off)."""
        return bool(self.process.spec.options.get("cpu_repack", False))

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Stream:
        return self.process.generate(prompt, sampling, cache_key=cache_key, cancelled=cancelled)

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]:
        return self.process.score(prompt, options, cache_key=cache_key)

    def close(self) -> None:
        self.process.close()
