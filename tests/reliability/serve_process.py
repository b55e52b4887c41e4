"""`offline-assistants serve` as a real process: started, killed with SIGKILL, started again on the same data.

The kill is of the server process alone, as a crash or the OOM killer would do it: its model process and code
kernels are left to notice by themselves, and `orphans()` says which of them did not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from offline_assistants.testing import free_port

PROBED = Path(__file__).with_name("probed_serve.py")  # serve plus GET /_probe (the load test's counts)


@dataclass
class ServeProcess:
    data_dir: Path
    model: str = "scripted"
    options: list[str] = field(default_factory=list)
    probed: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _children: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.data_dir / "assistants.db"

    @property
    def log(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-serve.log"

    def argv(self) -> list[str]:
        entry = [str(PROBED)] if self.probed else ["-m", "offline_assistants"]
        return [sys.executable, *entry, "serve", "--model", self.model, "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--log-level", "warning", *self.options]

    def start(self, timeout: float = 90.0) -> float:
        """Start the server and wait until it answers; returns the seconds that took."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        began = time.monotonic()
        with open(self.log, "ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.starts += 1
        deadline = began + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx2.get(f"{self.url}/v1/models", timeout=5).status_code == 200:
                    return time.monotonic() - began
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve did not answer within {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.05)

    def children(self) -> list[Proc]:
        """The server's descendants now: its model process, its code kernels."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return descendants(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the server process (only it); remember its descendants for orphans()."""
        assert self.proc is not None
        self._children = self.children()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def orphans(self, wait_s: float = 10.0) -> list[str]:
        """The killed server's descendants still running after `wait_s` (zombies count as gone: they run
        nothing, and only their new parent can reap them)."""
        deadline = time.monotonic() + wait_s
        while True:
            alive = [p for p in self._children if p.running()]
            if not alive or time.monotonic() > deadline:
                return [f"{p.pid} {p.cmdline[:120]}" for p in alive]
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop as Ctrl-C does; kill the whole group if that hangs, and anything a kill left behind."""
        if self.proc is not None and self.proc.poll() is None:
            self._children = self.children()
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for child in self._children:
            child.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@dataclass(frozen=True)
class Proc:
    """A process seen in /proc, told apart from a later one with the same pid by its start time."""

    pid: int
    started: int
    cmdline: str

    def running(self) -> bool:
        """Alive and the same process (zombies count as gone: they run nothing, and only their new parent can
        reap them)."""
        stat = _stat(self.pid)
        return stat is not None and stat[1] == self.started and stat[2] != "Z"

    def kill(self) -> None:
        if self.running():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) from /proc/PID/stat, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (name) ": the name may hold spaces
    return int(fields[1]), int(fields[19]), fields[0]


def descendants(pid: int) -> list[Proc]:
    """Every process below `pid`, from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents.setdefault(stat[0], []).append(int(entry.name))
    found: list[Proc] = []
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        stat = _stat(child)
        if stat is None:
            continue
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            continue
        found.append(Proc(child, stat[1], cmdline.strip()))
        todo += parents.get(child, [])
    return found
