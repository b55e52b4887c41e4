"""The model process: `python -m offline_assistants.llm.child FD`, started and owned by llm/process.py.

It loads one SteppedModel (llm/stepping.py; by default llm/batch.py's `BatchedLlama`) from the spec the parent
sends over the socket FD, lets it decode a few tokens so that a build whose CPU path crashes does so now rather
than in a user's run, says it is ready, then serves: every request is taken as it arrives and all of them advance
one step (one batched decode) at a time, their replies interleaved. The messages are llm/messages.py's.

The child exits when the parent closes its end (or dies): the next read or poll sees end-of-file.
"""

from __future__ import annotations

import os
import pkgutil
import signal
import sys
from multiprocessing.connection import Connection

from offline_assistants.llm.backend import describe_error
from offline_assistants.llm.messages import (
    Cancel,
    ChildSpec,
    Generate,
    LoadError,
    Ready,
    Replies,
    Score,
    Start,
    Stop,
    ToChild,
)
from offline_assistants.llm.stepping import SteppedModel

# Generation is batch work beside the API: at the lowest CPU priority, the server's requests win the cores whenever
# both want them, and generation still gets every cycle the API leaves idle. 100 clients on 2 cores while the model
# generates (tests/reliability/test_load.py): on a quiet machine p50 4.6 -> 3.0 ms (p99 20-33 ms either way); with
# other processes loading the machine, p99 330-400 ms at nice 0 against 55-80 ms at 19.
NICE = 19


def _load(spec: ChildSpec) -> SteppedModel:
    for entry in reversed(spec.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    model: SteppedModel = pkgutil.resolve_name(spec.loader)(**spec.options)
    model.warmup()
    return model


def serve(conn: Connection) -> int:
    start = conn.recv()
    assert isinstance(start, Start)
    try:
        model = _load(start.spec)
    except Exception as exc:  # noqa: BLE001 - whatever stops the load is the parent's to report
        conn.send(LoadError(describe_error(exc)))
        return 1
    conn.send(Ready(model.info()))
    return _serve(conn, model)


def _serve(conn: Connection, model: SteppedModel) -> int:
    """Read whatever arrived, then one step of everything in flight (llm/batch.py: one batched decode), and send
    its replies. Blocks only when nothing is in flight."""

    def take(message: ToChild) -> bool:
        match message:
            case Stop():
                return False
            case Generate() | Score():
                if replies := model.submit(message):
                    conn.send(Replies(tuple(replies)))
            case Cancel(req):
                model.cancel(req)
        return True

    while True:
        if not model.busy() and not take(conn.recv()):
            return 0
        while conn.poll():
            if not take(conn.recv()):
                return 0
        if replies := model.step():
            conn.send(Replies(tuple(replies)))


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
