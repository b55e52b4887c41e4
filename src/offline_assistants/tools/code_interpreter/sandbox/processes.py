"""A sandboxed kernel's processes: the cap on them (RLIMIT_NPROC, set by the launcher in limits.py), how many the
kernel's tree holds now, and waiting for the sandbox's init to exit once the kernel is killed."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

# Processes plus threads one kernel may have (RLIMIT_NPROC counts tasks). A kernel idles at ~10 threads; 256 leaves
# room for a multiprocessing pool and stops a fork bomb within milliseconds.
MAX_TASKS = 256


def _children(pid: int) -> tuple[int, list[int]]:
    """A process's task count and its child processes, read from /proc/PID/task/TID/children, so that walking a
    kernel's tree costs what the tree holds (3 processes idle), not the host's process count. A kernel built
    without that file (CONFIG_PROC_CHILDREN) gets the children from a scan of /proc."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, []  # gone meanwhile
    children: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                children.extend(int(child) for child in f.read().split())
        except FileNotFoundError:
            if os.path.exists(f"/proc/{pid}/task/{tid}"):
                return len(tids), _children_by_scan(pid)
        except OSError:
            continue
    return len(tids), children


def _children_by_scan(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                if entry.isdigit() and int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:  # after "pid (comm)"
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def tasks_under(pid: int) -> int:
    """Processes plus threads in the tree under `pid` (the kernel's bwrap): what RLIMIT_NPROC counts there."""
    total, todo = 0, [pid]
    while todo:
        tasks, children = _children(todo.pop())
        total += tasks
        todo.extend(children)
    return total


def inner(pid: int) -> list[int]:
    """The sandbox's init under a kernel's bwrap (`pid`), whose exit means its whole PID namespace is gone."""
    return _children(pid)[1]


def wait_exited(pids: Sequence[int], timeout_s: float = 5.0) -> None:
    """Waits until these processes have exited. A sandbox's init exits only once the kernel has killed and
    reaped every process of its namespace; before that, a fork bomb's processes still count against the
    session's uid, and a new kernel under it could not even start its threads."""
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                        break
            except OSError:
                break
            time.sleep(0.01)


def crowded(pid: int, limit: int = MAX_TASKS) -> bool:
    """Whether a kernel's sandbox is at its task cap (a fork bomb's leftovers): nothing more could start there."""
    return tasks_under(pid) >= limit * 9 // 10
