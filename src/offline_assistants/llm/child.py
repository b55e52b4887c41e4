"""The model process: `python -m offline_assistants.llm.child FD`, started and owned by llm/process.py.

It loads one generator (by default llm/batch.py's `BatchGenerator`) from the spec the parent sends over the socket
FD, decodes a few tokens so that a build whose CPU path crashes does so now rather than in a user's run, says it
is ready, then serves: every request is taken as it arrives and all of them advance one step (one batched decode)
at a time, their replies interleaved. A generator without `step()` (the tests' stand-ins) is served one
request at a time through the same loop. Everything crosses the socket as small pickled tuples:

    parent -> child   ("start", ChildSpec) once, then ("generate", req, prompt, Sampling, cache_key),
                      ("score", req, prompt, options, cache_key), ("cancel", req), ("stop",)
    child -> parent   ("ready", info) or ("load_error", message) once, then per request any number of
                      ("piece", req, token, text) and one ("finish", req, reason, prompt_tokens,
                      completion_tokens, kv_switch_ms) or ("error", req, message); a score request gets
                      ("scores", req, [log-probabilities]) or an error

The child exits when the parent closes its end (or dies): the next read or poll sees end-of-file.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from offline_assistants.llm.backend import Finish, Piece, describe_error

DEFAULT_LOADER = "offline_assistants.llm.batch:BatchGenerator"
# Generation is batch work beside the API: at the lowest CPU priority, the server's requests win the cores whenever
# both want them, and generation still gets every cycle the API leaves idle. 100 clients on 2 cores while the model
# generates (tests/reliability/test_load.py): on a quiet machine p50 4.6 -> 3.0 ms (p99 20-33 ms either way); with
# other processes loading the machine, p99 330-400 ms at nice 0 against 55-80 ms at 19.
NICE = 19


@dataclass(frozen=True)
class ChildSpec:
    """What the model process builds: `loader` ("module:callable") called with `options`. Tests name another
    loader (one that aborts, say) to put a misbehaving model behind the same supervisor."""

    options: dict[str, Any]
    loader: str = DEFAULT_LOADER
    sys_path: tuple[str, ...] = field(default_factory=lambda: tuple(sys.path))

    def replace(self, **options: Any) -> ChildSpec:
        return ChildSpec({**self.options, **options}, self.loader, self.sys_path)


def _load(spec: ChildSpec) -> Any:
    for entry in reversed(spec.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    module, _, attr = spec.loader.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    generator = factory(**spec.options)
    warmup = getattr(generator, "warmup", None)
    if warmup is not None:
        warmup()
    return generator


def serve(conn: Connection) -> int:
    kind, spec = conn.recv()
    assert kind == "start"
    try:
        generator = _load(spec)
    except Exception as exc:  # noqa: BLE001 - whatever stops the load is the parent's to report
        conn.send(("load_error", describe_error(exc)))
        return 1
    info = generator.info() if hasattr(generator, "info") else {}
    conn.send(("ready", info))
    return _serve(conn, generator if hasattr(generator, "step") else _OneAtATime(generator))


class _OneAtATime:
    """A generator whose generate() and score() each run one request to its end (the tests' stand-ins in
    tests/faulty_models.py) behind the step() interface: requests in the order they came, one item per step."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self._queue: deque[tuple[int, str, list[int], Any, str | None]] = deque()
        self._current: tuple[int, Iterator[Any]] | None = None
        self._cancelled: set[int] = set()

    def busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def submit(self, req: int, kind: str, prompt: list[int], body: Any, cache_key: str | None) -> list[tuple[Any, ...]]:
        self._queue.append((req, kind, prompt, body, cache_key))
        return []

    def cancel(self, req: int) -> None:
        self._cancelled.add(req)

    def step(self) -> list[tuple[Any, ...]]:
        if self._current is None:
            req, kind, prompt, body, cache_key = self._queue.popleft()
            if kind == "score":
                try:
                    return [("scores", req, self.generator.score(prompt, body, cache_key=cache_key))]
                except Exception as exc:  # noqa: BLE001 - one bad request must not end the process
                    return [("error", req, describe_error(exc))]
            items = self.generator.generate(prompt, body, cache_key=cache_key,
                                            cancelled=lambda: req in self._cancelled)
            self._current = (req, iter(items))
        req, items = self._current
        try:
            item = next(items)
        except StopIteration:
            item = None
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the process
            self._current = None
            return [("error", req, describe_error(exc))]
        if isinstance(item, Piece):
            return [("piece", req, item.token, item.text)]
        self._current = None
        self._cancelled.discard(req)
        if isinstance(item, Finish):
            return [("finish", req, item.reason, item.prompt_tokens, item.completion_tokens, item.kv_switch_ms)]
        return [("error", req, "the model ended without finishing")]


def _serve(conn: Connection, generator: Any) -> int:
    """Read whatever arrived, then one step of everything in flight (llm/batch.py: one batched decode), and send
    its replies. Blocks only when nothing is in flight."""

    def take(message: tuple[Any, ...]) -> bool:
        kind = message[0]
        if kind == "stop":
            return False
        if kind in ("generate", "score"):
            _, req, prompt, body, cache_key = message
            for reply in generator.submit(req, kind, prompt, body, cache_key):
                conn.send(reply)
        elif kind == "cancel":
            generator.cancel(message[1])
        return True

    while True:
        if not generator.busy() and not take(conn.recv()):
            return 0
        while conn.poll():
            if not take(conn.recv()):
                return 0
        for reply in generator.step():
            conn.send(reply)


def main(argv: list[str]) -> int:
    os.nice(NICE)  # raising one's niceness needs no privilege; the model's threads, made later, inherit it
    # Ctrl-C in a terminal reaches the whole process group: the server shuts down and closes the socket, which
    # ends this process; a KeyboardInterrupt here would only print a traceback over the server's last words.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(argv[1]))
    try:
        return serve(conn)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return 0  # the parent went away


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
