"""The sandbox's layout: what a kernel sees inside bubblewrap (`bwrap`, the tool Flatpak is built on), as bwrap's
argv, and the Jupyter kernel manager that starts a kernel in it.

A sandboxed kernel has its own mount view holding only its thread's working directory (read-write, at /mnt/data,
OpenAI's path), the Python environment and system libraries (read-only), a private size-bounded /tmp and the
directory of its own IPC sockets; its own network namespace (loopback only, nothing of the host's), PID namespace
(it sees its own processes only, and its parent is bwrap's init, not the server), IPC and UTS namespaces; an
environment of a few allowlisted variables; and a cap on its processes plus threads (RLIMIT_NPROC, applied by the
launcher in limits.py; processes.py watches it). The data dir, the database, other threads' directories and the
server's environment are simply not there.

The process cap only holds for a user other than root (the kernel exempts uid 0 from RLIMIT_NPROC, even in a user
namespace, since a namespace's uid 0 is still root outside). So the server picks one of two layouts:
- not root: an unprivileged user namespace (bwrap's default); RLIMIT_NPROC is then counted per namespace, i.e.
  per kernel.
- root: no user namespace; bwrap mounts as root and gives the launcher CAP_SETUID/CAP_SETGID only, and the launcher
  drops to a uid of the session's own (uids.py), so the cap counts that kernel's tasks alone.

detection.py finds a bwrap that actually runs this exact layout.
"""

from __future__ import annotations

import json
import os
import site
import sys
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import KernelManager

from offline_assistants.tools.code_interpreter.limits import FixedSpecManager, Limits, kernel_spec, launcher_argv
from offline_assistants.tools.code_interpreter.sandbox.fonts import font_lists
from offline_assistants.tools.code_interpreter.sandbox.processes import MAX_TASKS
from offline_assistants.tools.code_interpreter.sandbox.uids import chown_for, session_uid

WORKDIR_INSIDE = "/mnt/data"
IPC_INSIDE = "/run/kernel"
MPLCONFIGDIR = "/tmp/matplotlib"
# What of /etc a Python process needs: the loader's cache, time zone, fonts for matplotlib, MIME types, hosts
# (localhost), alternatives (symlinks /usr/bin tools point through). Not passwd/shadow, not the rest.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "fonts", "mime.types", "hosts",
        "alternatives", "nsswitch.conf", "os-release")
_SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class Bubblewrap:
    """A bwrap that runs the layout (detection.py found it), and which of the two layouts it runs."""

    path: str
    version: str
    as_root: bool  # the root layout (no user namespace; the launcher drops to a per-session uid)

    def describe(self) -> str:
        how = "kernels drop to a uid of their own" if self.as_root else "in a user namespace"
        return f"bubblewrap {self.version} ({self.path}; {how})"


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
