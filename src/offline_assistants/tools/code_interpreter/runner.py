"""What the code interpreter tool asks of a code runner (the CodeRunner protocol), what an execution returns, and
the bounded log buffer a runner collects output in. The Jupyter runner (kernels.py) implements it; tests may hand
the engine any other."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

TRUNCATION_MARKER = "\n[... output truncated ...]\n"


@dataclass
class ExecutionResult:
    logs: str
    images: list[bytes] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    error: str | None = None
    state_lost: bool = False


class CodeRunner(Protocol):
    def execute(
        self, session_id: str, code: str, *, input_files: Mapping[str, Path] | None = None
    ) -> ExecutionResult: ...

    def open_session(self, session_id: str, *, memory_mb: int | None = None) -> Path:
        """Make the session if it is new and return its working directory (/mnt/data to its code). `memory_mb`,
        where given, caps what its kernel may allocate (at most the runner's own cap) from the kernel's next start."""
        ...

    def add_files(self, session_id: str, files: Mapping[str, Path]) -> None:
        """Copy files into the session's working directory (name -> source), as `input_files` are copied."""
        ...

    def shutdown(self, session_id: str, *, remove_files: bool = False) -> None: ...

    def close(self) -> None: ...


class LogBuffer:
    """Keeps the head and tail of the output so a runaway print loop cannot
    exhaust server memory while the end (usually the traceback) survives."""

    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 0)
        self._head_cap = self._limit // 2
        self._tail_cap = self._limit - self._head_cap
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self._dropped = 0

    def write(self, text: str) -> None:
        if not text:
            return
        if self._head_len < self._head_cap:
            take = text[: self._head_cap - self._head_len]
            self._head.append(take)
            self._head_len += len(take)
            text = text[len(take) :]
            if not text:
                return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len > self._tail_cap:
            excess = self._tail_len - self._tail_cap
            first = self._tail[0]
            if len(first) <= excess:
                self._tail.popleft()
                self._tail_len -= len(first)
                self._dropped += len(first)
            else:
                self._tail[0] = first[excess:]
                self._tail_len -= excess
                self._dropped += excess

    def render(self) -> str:
        head = "".join(self._head)
        tail = "".join(self._tail)
        if not self._dropped:
            return head + tail
        # Make room for the marker so the result stays within the limit.
        room = self._limit - len(TRUNCATION_MARKER)
        if room <= 0:
            return TRUNCATION_MARKER.strip()[: self._limit]
        head_keep = min(len(head), room // 2)
        tail_keep = min(len(tail), room - head_keep)
        return head[:head_keep] + TRUNCATION_MARKER + (tail[-tail_keep:] if tail_keep else "")
