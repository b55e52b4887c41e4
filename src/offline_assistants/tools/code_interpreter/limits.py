"""How a code-interpreter kernel is bounded: the launcher that applies rlimits (memory, file size, processes) and
drops to the sandbox's uid before ipykernel starts, and a kernelspec manager that serves only that launcher."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

# RLIMIT_AS backstop on top of the RLIMIT_DATA budget: shared libraries, thread
# stacks and malloc arena reservations need ~0.8-1 GB of address space that is
# never backed by memory (measured: bare kernel VmSize 814 MB, with pyplot
# 1045 MB), so AS must be far above the data budget to not break imports.
ADDRESS_SPACE_HEADROOM_MB = 4096
# Thread pools size themselves by core count; on a big host each thread's
# stack and buffers eat the data budget and CPU the sandbox should not take.
THREAD_CAP_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Runs as `python -c LAUNCHER <data_bytes> <as_bytes> <fsize_bytes> <nproc> <uid> -f <connection file> ...`
# (launcher_argv). jupyter_client substitutes {name} patterns in every argv entry, so this code must not contain
# braces. RLIMIT_FSIZE makes a write past the cap fail with EFBIG (CPython ignores SIGXFSZ, so the kernel lives).
# nproc 0 leaves RLIMIT_NPROC alone: outside a sandbox it would count every process of the server's user.
# uid >= 0 (the sandbox's root layout, sandbox/layout.py): drop to it once the limits are set.
LAUNCHER = """\
import resource, sys
def _cap(which, value):
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
_cap(resource.RLIMIT_DATA, int(sys.argv.pop(1)))
_cap(resource.RLIMIT_AS, int(sys.argv.pop(1)))
_cap(resource.RLIMIT_FSIZE, int(sys.argv.pop(1)))
_cap(resource.RLIMIT_CORE, 0)
_nproc, _uid = int(sys.argv.pop(1)), int(sys.argv.pop(1))
if _nproc:
    _cap(resource.RLIMIT_NPROC, _nproc)
if _uid >= 0:
    import os
    os.setgroups([])
    os.setresgid(_uid, _uid, _uid)
    os.setresuid(_uid, _uid, _uid)
del _cap, _nproc, _uid
if sys.argv[1:] == ["--probe"]:
    print("sandboxed")
    sys.exit(0)
if sys.path and sys.path[0] == "":
    del sys.path[0]
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""


@dataclass(frozen=True)
class Limits:
    """What one kernel may take: RLIMIT_DATA (what code allocates), RLIMIT_AS (a loose backstop, see
    ADDRESS_SPACE_HEADROOM_MB), RLIMIT_FSIZE (the largest file it may write)."""

    data_bytes: int
    as_bytes: int
    fsize_bytes: int

    @classmethod
    def of(cls, memory_mb: int, max_file_bytes: int) -> Limits:
        mib = 1024 * 1024
        return cls(memory_mb * mib, (memory_mb + ADDRESS_SPACE_HEADROOM_MB) * mib, max_file_bytes)


def launcher_argv(limits: Limits, *, nproc: int = 0, uid: int = -1, probe: bool = False) -> list[str]:
    """The interpreter running LAUNCHER with these limits; the kernel's own arguments follow (or --probe: set
    the limits, drop the uid, print "sandboxed" and exit, which is how sandbox/detection.py tests a layout)."""
    argv = [sys.executable, "-c", LAUNCHER, str(limits.data_bytes), str(limits.as_bytes), str(limits.fsize_bytes),
            str(nproc), str(uid)]
    return argv + ["--probe"] if probe else argv


def kernel_spec(launcher: list[str], interrupt_mode: str, connection_file: str = "{connection_file}") -> KernelSpec:
    return KernelSpec(
        argv=[
            *launcher,
            "-f",
            connection_file,
            # History would persist model code in ~/.ipython and make
            # concurrent kernels contend on one sqlite file.
            "--HistoryManager.enabled=False",
            # The standard library's JSON for the kernel's messages, whatever else is installed: with orjson
            # present jupyter_client switches to it, and a flood of output then outgrows the memory cap
            # (100 MB printed killed the kernel under the default 2 GB; measured).
            "--Session.packer=json",
            "--Session.unpacker=json",
        ],
        display_name="offline-assistants python",
        language="python",
        interrupt_mode=interrupt_mode,
    )


class FixedSpecManager(KernelSpecManager):
    """Serves only our launcher spec, so an installed 'python3' kernelspec
    cannot redirect sessions to another interpreter or skip the rlimits."""

    def __init__(self, spec: KernelSpec) -> None:
        super().__init__()
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec
