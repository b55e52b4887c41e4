"""How a code-interpreter kernel is bounded and what it may hand back: the launcher that applies rlimits before
ipykernel starts, a kernelspec manager that serves only that launcher, and the snapshot of a working directory
that finds the files the code wrote (regular files only, never symlinks)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

MAX_TRACKED_FILES = 10_000
# RLIMIT_AS backstop on top of the RLIMIT_DATA budget: shared libraries, thread
# stacks and malloc arena reservations need ~0.8-1 GB of address space that is
# never backed by memory (measured: bare kernel VmSize 814 MB, with pyplot
# 1045 MB), so AS must be far above the data budget to not break imports.
ADDRESS_SPACE_HEADROOM_MB = 4096
# Thread pools size themselves by core count; on a big host each thread's
# stack and buffers eat the data budget and CPU the sandbox should not take.
THREAD_CAP_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Runs as `python -c LAUNCHER <data_bytes> <as_bytes> -f <connection file> ...`.
# jupyter_client substitutes {name} patterns in every argv entry, so this code
# must not contain braces.
LAUNCHER = """\
import resource, sys
def _cap(which, value):
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
_cap(resource.RLIMIT_DATA, int(sys.argv.pop(1)))
_cap(resource.RLIMIT_AS, int(sys.argv.pop(1)))
_cap(resource.RLIMIT_CORE, 0)
del _cap
if sys.path and sys.path[0] == "":
    del sys.path[0]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


class FixedSpecManager(KernelSpecManager):
    """Serves only our launcher spec, so an installed 'python3' kernelspec
    cannot redirect sessions to another interpreter or skip the rlimits."""

    def __init__(self, spec: KernelSpec) -> None:
        super().__init__()
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Regular files under root (hidden dirs and symlinks skipped: a symlink to
    /etc/passwd must not be handed back as an output file)."""
    found: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            found[os.path.relpath(full, root)] = (st.st_mtime_ns, st.st_size, st.st_ino)
            if len(found) >= MAX_TRACKED_FILES:
                return found
    return found


def validate_input_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"invalid input file name: {name!r}")
