"""The Jupyter code runner: one kernel per session, started lazily, reaped when idle.

Each session (the engine uses the thread id) gets its own Jupyter kernel and
working directory, so variables persist between tool calls of one thread and
never leak into another. Kernels are bounded in time (interrupt, then kill:
execution.py), memory and file size (rlimits applied by a tiny launcher before
ipykernel starts: limits.py) and environment (an allowlist, so server secrets
never reach model-written code). Where bubblewrap works (sandbox/) each kernel
also runs in a sandbox that sees only its working directory and has no network;
with `sandbox="off"`, or where none works, it runs as the server's user.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning import LocalProvisioner

from offline_assistants.config import SandboxMode, Settings
from offline_assistants.tools.code_interpreter.execution import run_code
from offline_assistants.tools.code_interpreter.limits import (
    THREAD_CAP_VARS,
    FixedSpecManager,
    Limits,
    kernel_spec,
    launcher_argv,
)
from offline_assistants.tools.code_interpreter.runner import ExecutionResult
from offline_assistants.tools.code_interpreter.sandbox import detection, fonts, layout, processes, uids
from offline_assistants.tools.code_interpreter.workdir import snapshot, validate_input_name

log = logging.getLogger(__name__)

# Session ids become directory names; a strict pattern rules out traversal and
# keeps IPC socket paths short.
_SESSION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_KERNEL_START_TIMEOUT_S = 60.0
# Unix socket paths are limited to ~107 bytes; leave room for "-<port>".
_MAX_SOCKET_PREFIX = 90


@dataclass
class _Session:
    session_id: str
    workdir: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    km: KernelManager | None = None
    kc: BlockingKernelClient | None = None
    ipc_dir: Path | None = None  # a sandboxed kernel's own socket dir, removed with it
    last_used: float = field(default_factory=time.monotonic)
    # Set once a kernel has existed: any later fresh start means lost state.
    had_kernel: bool = False
    closed: bool = False
    memory_mb: int | None = None  # a cap of its own (open_session), at most the runner's


def _check_session_id(session_id: str) -> None:
    if not _SESSION_ID_RE.fullmatch(session_id):
        raise ValueError(f"invalid session id: {session_id!r}")


def _kernel_pid(km: KernelManager) -> int | None:
    """The kernel's process id (a sandboxed kernel's: its bwrap's), which the local provisioner started."""
    provisioner = km.provisioner
    return provisioner.pid if isinstance(provisioner, LocalProvisioner) else None


class JupyterCodeRunner:
    """One ipykernel per session, started lazily, reaped when idle."""

    def __init__(
        self,
        root_dir: Path,
        *,
        timeout_s: float = 30.0,
        memory_mb: int = Settings.code_memory_mb,  # the server's default, one place for it
        max_output_chars: int = 20_000,
        idle_timeout_s: float = 600.0,
        env_allowlist: Sequence[str] = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"),
        sandbox: SandboxMode = Settings.code_sandbox,
        max_file_bytes: int = Settings.max_file_bytes,  # the largest file a kernel may write (RLIMIT_FSIZE)
    ) -> None:
        # First, so `required` without a sandbox fails before anything is made.
        self.bwrap = detection.resolve(sandbox)
        if self.bwrap is not None:
            fonts.build_font_list()
        self.root_dir = Path(root_dir).resolve()
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.max_output_chars = max_output_chars
        self.idle_timeout_s = idle_timeout_s
        self.env_allowlist = tuple(env_allowlist)

        self.root_dir.mkdir(parents=True, exist_ok=True)
        self._conn_dir = self.root_dir / ".kernels"
        self._conn_dir.mkdir(mode=0o700, exist_ok=True)
        # The dir mode is what keeps other local users off the IPC sockets.
        os.chmod(self._conn_dir, 0o700)
        self._own_socket_dir: Path | None = None
        if len(str(self._conn_dir)) + 24 <= _MAX_SOCKET_PREFIX:
            self._socket_dir = self._conn_dir
        else:
            self._own_socket_dir = Path(tempfile.mkdtemp(prefix="oa-ipc-"))
            self._socket_dir = self._own_socket_dir

        # memory_mb caps RLIMIT_DATA (heap + private anonymous mappings, i.e.
        # what code allocates): RLIMIT_AS at 1 GB cannot even import pyplot.
        # AS stays as a loose backstop because shared mappings such as
        # mmap.mmap(-1, n) are not counted in DATA.
        self._limits = Limits.of(memory_mb, max_file_bytes)
        self.max_file_bytes = max_file_bytes
        self._spec_manager = FixedSpecManager(kernel_spec(launcher_argv(self._limits), "signal"))

        self._sessions: dict[str, _Session] = {}
        self._map_lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # ------------------------------------------------------------------ API

    def execute(
        self, session_id: str, code: str, *, input_files: Mapping[str, Path] | None = None
    ) -> ExecutionResult:
        _check_session_id(session_id)
        for name in input_files or {}:
            validate_input_name(name)
        self._reap_idle()
        while True:
            session = self._get_session(session_id)
            with session.lock:
                # shutdown() may have retired this object while we waited.
                if session.closed:
                    continue
                try:
                    return self._execute_locked(session, code, input_files or {})
                finally:
                    session.last_used = time.monotonic()

    def open_session(self, session_id: str, *, memory_mb: int | None = None) -> Path:
        _check_session_id(session_id)
        session = self._get_session(session_id)
        if memory_mb is not None:
            session.memory_mb = min(memory_mb, self.memory_mb)
        return session.workdir

    def add_files(self, session_id: str, files: Mapping[str, Path]) -> None:
        _check_session_id(session_id)
        for name in files:
            validate_input_name(name)
        while True:
            session = self._get_session(session_id)
            with session.lock:
                if session.closed:  # shutdown() retired it while we waited
                    continue
                self._copy_in(session, files)
                return

    def shutdown(self, session_id: str, *, remove_files: bool = False) -> None:
        """Stops the session's kernel. Its working directory stays (returned file paths point into it) unless
        `remove_files`: the engine asks for that when the thread itself is deleted."""
        with self._map_lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            with session.lock:
                session.closed = True
                self._kill_kernel(session)
        if remove_files and _SESSION_ID_RE.fullmatch(session_id):
            shutil.rmtree(self.root_dir / session_id, ignore_errors=True)

    def close(self) -> None:
        with self._map_lock:
            self._closed = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
        self._stop.set()
        for session in sessions:
            with session.lock:
                session.closed = True
                self._kill_kernel(session)
        if self._own_socket_dir is not None:
            shutil.rmtree(self._own_socket_dir, ignore_errors=True)

    def __enter__(self) -> JupyterCodeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ sessions

    def _get_session(self, session_id: str) -> _Session:
        with self._map_lock:
            if self._closed:
                raise RuntimeError("JupyterCodeRunner is closed")
            session = self._sessions.get(session_id)
            if session is None:
                workdir = self.root_dir / session_id
                workdir.mkdir(mode=0o700, exist_ok=True)
                session = _Session(session_id=session_id, workdir=workdir)
                self._sessions[session_id] = session
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=self._reap_loop, name="code-interpreter-reaper", daemon=True
                )
                self._reaper.start()
            return session

    def _reap_loop(self) -> None:
        interval = min(max(self.idle_timeout_s / 4, 0.5), 60.0)
        while not self._stop.wait(interval):
            try:
                self._reap_idle()
            except Exception:  # the reaper must outlive any one bad kernel
                log.exception("idle kernel reaping failed")

    def _reap_idle(self) -> None:
        with self._map_lock:
            sessions = list(self._sessions.values())
        cutoff = time.monotonic() - self.idle_timeout_s
        for session in sessions:
            if session.km is None or session.last_used > cutoff:
                continue
            # A busy session is by definition not idle; never wait on it.
            if not session.lock.acquire(blocking=False):
                continue
            try:
                if session.km is not None and session.last_used <= cutoff:
                    log.info("shutting down idle kernel for session %s", session.session_id)
                    self._kill_kernel(session)
            finally:
                session.lock.release()

    # -------------------------------------------------------------- kernels

    def _kernel_env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in self.env_allowlist if k in os.environ}
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        for var in THREAD_CAP_VARS:
            env.setdefault(var, "1")
        return env

    def _start_kernel(self, session: _Session) -> None:
        kid = uuid.uuid4().hex
        limits, specs = self._limits, self._spec_manager
        if session.memory_mb is not None and session.memory_mb != self.memory_mb:
            limits = Limits.of(session.memory_mb, self.max_file_bytes)
            specs = FixedSpecManager(kernel_spec(launcher_argv(limits), "signal"))
        if self.bwrap is not None:
            session.ipc_dir = self._socket_dir / f"s-{kid[:12]}"
            km = layout.kernel_manager(self.bwrap, session.session_id, workdir=session.workdir,
                                       ipc_dir=session.ipc_dir, limits=limits, env=self._kernel_env())
        else:
            km = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
            km.transport = "ipc"
            km.connection_file = str(self._conn_dir / f"kernel-{kid}.json")
            km.ip = str(self._socket_dir / f"k-{kid[:12]}")
        kc: BlockingKernelClient | None = None
        try:
            km.start_kernel(
                cwd=str(session.workdir),
                env=self._kernel_env(),
                stdout=subprocess.DEVNULL,
            )
            kc = km.client()
            # No heartbeat thread: liveness comes from polling the process.
            kc.start_channels(stdin=False, hb=False, control=False)
            kc.wait_for_ready(timeout=_KERNEL_START_TIMEOUT_S)
        except BaseException:
            if kc is not None:
                kc.stop_channels()
            try:
                km.shutdown_kernel(now=True)
            except Exception:
                log.debug("cleanup after failed kernel start failed", exc_info=True)
            self._remove_ipc(session)
            raise
        session.km, session.kc = km, kc
        session.had_kernel = True

    def _kill_kernel(self, session: _Session) -> None:
        km, kc = session.km, session.kc
        session.km = session.kc = None
        pid = _kernel_pid(km) if km is not None else None
        sandbox_init = processes.inner(pid) if self.bwrap is not None and pid is not None else []
        if kc is not None:
            try:
                kc.stop_channels()
            except Exception:
                log.debug("stop_channels failed", exc_info=True)
        if km is not None:
            try:
                # now=True: SIGKILL to the process group, which also takes
                # down any subprocesses the model's code spawned.
                km.shutdown_kernel(now=True)
            except Exception:
                log.warning("kernel shutdown failed for %s", session.session_id, exc_info=True)
        processes.wait_exited(sandbox_init)
        self._remove_ipc(session)

    @staticmethod
    def _remove_ipc(session: _Session) -> None:
        if session.ipc_dir is not None:
            shutil.rmtree(session.ipc_dir, ignore_errors=True)
            session.ipc_dir = None

    # ------------------------------------------------------------ execution

    def _copy_in(self, session: _Session, files: Mapping[str, Path]) -> None:
        for name, source in files.items():
            dest = session.workdir / name
            # Model code may have planted a symlink here; copying through it
            # would overwrite a file outside the working directory.
            if dest.is_symlink():
                dest.unlink()
            shutil.copyfile(source, dest)
            if self.bwrap is not None and self.bwrap.as_root:  # the kernel's own uid may then change it
                uids.chown_for(uids.session_uid(session.session_id), [dest])

    def _execute_locked(
        self, session: _Session, code: str, input_files: Mapping[str, Path]
    ) -> ExecutionResult:
        self._copy_in(session, input_files)
        state_lost = False
        if session.km is not None and not session.km.is_alive():
            self._kill_kernel(session)
        if session.km is None:
            state_lost = session.had_kernel
            try:
                self._start_kernel(session)
            except Exception as exc:
                log.exception("could not start kernel for session %s", session.session_id)
                return ExecutionResult(
                    logs=f"[could not start the Python kernel: {exc}]",
                    error="kernel_died",
                    state_lost=state_lost,
                )

        before = snapshot(session.workdir)
        assert session.km is not None and session.kc is not None
        outcome = run_code(session.km, session.kc, code, timeout_s=self.timeout_s,
                           max_output_chars=self.max_output_chars, crowded=lambda: self._crowded(session))
        if not outcome.kernel_lost and self._crowded(session):
            outcome.overrun()
        if outcome.kernel_lost:
            self._kill_kernel(session)
            state_lost = True
        after = snapshot(session.workdir)
        changed = sorted(name for name, sig in after.items() if before.get(name) != sig)
        return ExecutionResult(
            logs=outcome.buffer.render(),
            images=outcome.images,
            files=[session.workdir / name for name in changed],
            error=outcome.error,
            state_lost=state_lost,
        )

    def _crowded(self, session: _Session) -> bool:
        """Whether the sandbox is at its task cap: a fork bomb's children live on, each a copy of the kernel
        whose inherited sockets garble its messages, and nothing more could start there, not even the kernel's
        own threads. Only a restart clears it. Checked while code runs and after (~0.1 ms, the kernel's tree)."""
        if self.bwrap is None or session.km is None:
            return False
        pid = _kernel_pid(session.km)
        return pid is not None and processes.crowded(pid)
