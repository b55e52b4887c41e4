"""One execution on a live kernel: the code goes to the kernel, its messages are read until it is idle again, and
they become logs (bounded, ANSI stripped), images and an error reason. Past the time limit the kernel is
interrupted, and past a grace period after that, given up as lost (the runner kills and restarts it)."""

from __future__ import annotations

import base64
import logging
import queue
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from offline_assistants.tools.code_interpreter.runner import LogBuffer
from offline_assistants.tools.code_interpreter.sandbox.processes import MAX_TASKS

log = logging.getLogger(__name__)

_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_INTERRUPT_GRACE_S = 3.0
_REPLY_TIMEOUT_S = 1.0
_POLL_S = 0.1
_ALIVE_CHECK_EVERY_S = 0.5
_MAX_IMAGES = 20


@dataclass
class Outcome:
    buffer: LogBuffer
    images: list[bytes] = field(default_factory=list)
    error: str | None = None
    kernel_lost: bool = False  # the runner must kill the kernel: the next execution starts a fresh one

    def died(self) -> Outcome:
        self.buffer.write(
            "\n[the Python kernel died unexpectedly; it will be restarted and all "
            "variables were lost]\n"
        )
        self.error = "kernel_died"
        self.kernel_lost = True
        return self

    def overrun(self) -> Outcome:
        self.buffer.write(
            f"\n[the code started more processes than the sandbox allows ({MAX_TASKS} processes and "
            "threads); the kernel was restarted and all variables were lost]\n"
        )
        self.error = self.error or "too_many_processes"
        self.kernel_lost = True
        return self


def _strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def _error_reason(ename: str) -> str:
    return "memory" if ename == "MemoryError" else ename or "error"


def run_code(km: KernelManager, kc: BlockingKernelClient, code: str, *, timeout_s: float, max_output_chars: int,
             crowded: Callable[[], bool]) -> Outcome:
    """Runs `code` on the kernel; `crowded` says whether its sandbox is at its task cap (checked while it runs)."""
    outcome = Outcome(buffer=LogBuffer(max_output_chars))
    # store_history=False keeps IPython's Out cache from pinning every
    # displayed result (e.g. big DataFrames) for the kernel's lifetime.
    msg_id = kc.execute(code, store_history=False, allow_stdin=False, stop_on_error=True)
    deadline = time.monotonic() + timeout_s
    interrupted_at: float | None = None
    last_alive_check = time.monotonic()

    while True:
        now = time.monotonic()
        if interrupted_at is None and now >= deadline:
            interrupted_at = now
            outcome.error = "timeout"
            try:
                km.interrupt_kernel()
            except Exception:
                log.debug("interrupt failed", exc_info=True)
        elif interrupted_at is not None and now >= interrupted_at + _INTERRUPT_GRACE_S:
            # Interrupt ignored (busy in C code or swallowed the
            # KeyboardInterrupt): the only way out is to kill it.
            outcome.buffer.write(
                f"\n[execution timed out after {timeout_s:g} s and the kernel did not "
                "respond to the interrupt; it was restarted and all variables were lost]\n"
            )
            outcome.kernel_lost = True
            return outcome
        limit = deadline if interrupted_at is None else interrupted_at + _INTERRUPT_GRACE_S
        wait = min(_POLL_S, max(limit - now, 0.001))

        if now - last_alive_check >= _ALIVE_CHECK_EVERY_S:
            last_alive_check = now
            if not km.is_alive():
                return outcome.died()
            if crowded():
                return outcome.overrun()
        try:
            msg = kc.get_iopub_msg(timeout=wait)
        except queue.Empty:
            if not km.is_alive():
                return outcome.died()
            continue
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        if msg_type == "status":
            if content.get("execution_state") == "idle":
                break
        elif msg_type == "stream":
            outcome.buffer.write(_strip_ansi(content.get("text", "")))
        elif msg_type in ("execute_result", "display_data", "update_display_data"):
            _display(outcome, content.get("data", {}))
        # After our interrupt the KeyboardInterrupt traceback is our doing, not the model's; the timeout note
        # replaces it.
        elif msg_type == "error" and interrupted_at is None:
                tb = "\n".join(content.get("traceback", []))
                outcome.buffer.write(_strip_ansi(tb) + "\n")
                outcome.error = _error_reason(content.get("ename", ""))

    if interrupted_at is not None:
        outcome.buffer.write(f"\n[execution timed out after {timeout_s:g} s]\n")
    _collect_reply(kc, msg_id, outcome)
    return outcome


def _display(outcome: Outcome, data: Mapping[str, Any]) -> None:
    png = data.get("image/png")
    if isinstance(png, str):
        if len(outcome.images) < _MAX_IMAGES:
            outcome.images.append(base64.b64decode(png))
        elif len(outcome.images) == _MAX_IMAGES:
            outcome.buffer.write(f"[only the first {_MAX_IMAGES} images are kept]\n")
        # The text/plain of an image is "<Figure size ...>", pure noise.
        return
    text = data.get("text/plain")
    if isinstance(text, str):
        outcome.buffer.write(_strip_ansi(text) + "\n")


def _collect_reply(kc: BlockingKernelClient, msg_id: str, outcome: Outcome) -> None:
    # Consuming the reply keeps the shell queue from growing; it also
    # carries the error name should the iopub error message be missing.
    end = time.monotonic() + _REPLY_TIMEOUT_S
    while (remaining := end - time.monotonic()) > 0:
        try:
            reply = kc.get_shell_msg(timeout=remaining)
        except queue.Empty:
            return
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        content = reply["content"]
        if content.get("status") == "error" and outcome.error is None:
            outcome.error = _error_reason(content.get("ename", ""))
        return
