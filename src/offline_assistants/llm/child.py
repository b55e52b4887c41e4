"""The model process: `python -m offline_assistants.llm.child FD`, started and owned by llm/process.py.

It loads one generator (by default llm/batch.py's `BatchGenerator`) from the spec the parent sends over the socket
FD, decodes a few tokens so that a build whose CPU path crashes does so now rather than in a user's run, says it
is ready, then serves. A generator with `step()` takes every request as it arrives and advances all of them one
batched decode at a time, interleaving their replies; a plain one (tests' stand-ins) serves one at a time. Everything crosses the socket as small pickled tuples:

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
from collections.abc import Callable
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
    if hasattr(generator, "step"):
        return _serve_batched(conn, generator)
    pending: deque[tuple[Any, ...]] = deque()  # requests that arrived while another one was generating
    while True:
        message = pending.popleft() if pending else conn.recv()
        if message[0] == "stop":
            return 0
        if message[0] == "score":
            _, req, prompt, options, cache_key = message
            try:
                conn.send(("scores", req, generator.score(prompt, options, cache_key=cache_key)))
            except (EOFError, OSError):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the process
                conn.send(("error", req, describe_error(exc)))
            continue
        if message[0] != "generate":
            continue  # a cancel for a request that has already ended
        _, req, prompt, sampling, cache_key = message
        stop = False

        def cancelled() -> bool:
            # One poll per token: a select() call, microseconds next to a decode step.
            nonlocal stop
            while conn.poll():
                incoming = conn.recv()
                if incoming[0] == "cancel":
                    stop = stop or incoming[1] == req
                else:
                    pending.append(incoming)
            return stop

        try:
            for item in generator.generate(prompt, sampling, cache_key=cache_key, cancelled=cancelled):
                if isinstance(item, Piece):
                    conn.send(("piece", req, item.token, item.text))
                elif isinstance(item, Finish):
                    conn.send(("finish", req, item.reason, item.prompt_tokens, item.completion_tokens,
                               item.kv_switch_ms))
        except (EOFError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the process
            conn.send(("error", req, describe_error(exc)))


def _serve_batched(conn: Connection, generator: Any) -> int:
    """Serve a generator that takes many requests at once (llm/batch.py): read whatever arrived, then one step
    (one batched decode) of everything in flight, and send its replies. Blocks only when nothing is in flight."""

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
