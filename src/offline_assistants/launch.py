"""The one way to build a server from Settings: the code runner, the model backend, the engine over them, and the
ASGI app. `offline-assistants serve`, `doctor`, the pytest plugin and `testing.py` all call these functions, so a
server built for a test is the server a user runs.

Each step reports what it chose to a `Report` (serve's prints to stderr, the rest stay quiet) and refuses with a
`LaunchError` that carries the exit status the command line should return.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from offline_assistants.config import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.applications import Starlette

    from offline_assistants.engine import Engine
    from offline_assistants.llm.backend import ModelBackend
    from offline_assistants.llm.process import ProcessBackend
    from offline_assistants.llm.repack import RepackChoice
    from offline_assistants.tools.code_interpreter import JupyterCodeRunner

SCRIPTED = "scripted"  # --model scripted: the scripted model of offline_assistants/script.py, driven over /_script

class Report(Protocol):
    """Where building a server says what it chose, and how long a slow step has been going."""

    def line(self, text: str) -> None: ...

    def progress(self, text: str) -> None: ...


class Quiet:
    """The report of callers that show nothing (tests, doctor)."""

    def line(self, text: str) -> None:
        pass

    def progress(self, text: str) -> None:
        pass


QUIET = Quiet()


class LaunchError(Exception):
    """A server cannot be built as configured; `exit_code` is what the command line returns (2: no such model)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def open_code_runner(settings: Settings, *, root: Path | None = None, say: Report = QUIET) -> JupyterCodeRunner:
    """The code interpreter's runner, sandboxed as `settings.code_sandbox` says (kernels start only when code runs).
    Raises LaunchError when the sandbox is required and none works."""
    from offline_assistants.tools.code_interpreter import JupyterCodeRunner, SandboxUnavailable

    try:
        runner = JupyterCodeRunner(root or settings.sandbox_dir, timeout_s=settings.code_timeout_s,
                                   memory_mb=settings.code_memory_mb, max_output_chars=settings.code_max_output_chars,
                                   idle_timeout_s=settings.kernel_idle_timeout_s, sandbox=settings.code_sandbox,
                                   max_file_bytes=settings.max_file_bytes)
    except SandboxUnavailable as exc:
        raise LaunchError(str(exc)) from exc
    if runner.bwrap is not None:
        say.line(f"sandbox:  {runner.bwrap.describe()}: kernels see only their thread's files, no network")
    else:
        why = "--code-sandbox off" if settings.code_sandbox == "off" else "no sandbox works here, see the warning"
        say.line(f"sandbox:  NONE ({why}): kernels run as this user")
    return runner


def open_model(settings: Settings, *, say: Report = QUIET) -> ModelBackend:
    """The backend `settings` name: a remote model server (--backend-url), the scripted model, or a local GGUF in
    its own model process. Raises LaunchError (exit 2: no such model; 1: it would not load or connect)."""
    if settings.backend_url:
        return _connect_remote(settings, say)
    if settings.model == SCRIPTED:
        from offline_assistants.script import Script, ScriptedModel

        say.line("model:    scripted (replies, calls and failures come from the script: /_script)")
        return ScriptedModel(Script())
    return open_local_model(settings, say=say).backend


def _connect_remote(settings: Settings, say: Report) -> ModelBackend:
    from offline_assistants.llm.backend import ModelError
    from offline_assistants.llm.remote_loading import connect

    say.line(f"connecting to the model server at {settings.backend_url}")
    try:
        backend = connect(settings.backend_url or "", model=settings.backend_model, api_key=settings.backend_api_key,
                          tokenizer=settings.tokenizer, n_ctx=settings.n_ctx)
    except ModelError as exc:
        raise LaunchError(str(exc)) from exc
    say.line(f"model:    {backend.describe()}")
    counted = settings.tokenizer or "the server's tokenize endpoint"
    say.line(f"tokens:   counted with {counted}")
    runs = max(1, settings.max_concurrent_runs) if backend.parallel else 1
    why = "--parallel" if backend.parallel else "this server runs one request at a time"
    say.line(f"runs:     up to {runs} at once ({why})")
    return backend


@dataclass(frozen=True)
class LocalModel:
    backend: ProcessBackend
    repack: RepackChoice  # the CPU repack verdict its model process was started with (cached in the data dir)


def open_local_model(settings: Settings, *, say: Report = QUIET) -> LocalModel:
    """The GGUF `settings.model` names (or the embedded default) in its own model process, as serve runs it."""
    from offline_assistants.llm.backend import ModelError
    from offline_assistants.llm.catalog import ModelNotFound, resolve
    from offline_assistants.llm.loading import open_backend
    from offline_assistants.llm.packed import PackedError

    try:
        model = resolve(settings.model, settings.models_dir, data_dir=settings.data_dir, progress=say.progress)
    except ModelNotFound as exc:
        raise LaunchError(str(exc), exit_code=2) from exc
    except PackedError as exc:  # a packed model's packages missing, at another version, or not the pinned bytes
        raise LaunchError(str(exc)) from exc
    if model.source:
        say.line(f"model:    {model.name}: {model.source}")
    label = f"loading {model.name} ({model.path.stat().st_size / 1e6:.0f} MB) from {model.path} in a model process"
    say.line(label)
    start = time.monotonic()
    with _Progress(label, say):
        try:
            backend, repack = open_backend(model, settings.model_options(), cache_dir=settings.data_dir)
        except ModelError as exc:
            raise LaunchError(str(exc)) from exc
    where = f"GPU ({backend.gpu_layers} layers)" if backend.gpu_layers else f"CPU ({settings.n_threads} threads)"
    say.line(f"loaded {model.name} in {time.monotonic() - start:.1f}s on {where}, context {backend.n_ctx} tokens, "
        f"process {backend.pid}")
    say.line(repack.banner())
    runs = max(1, settings.max_concurrent_runs)
    together = "decoded together in one batch" if runs > 1 else "one at a time"
    say.line(f"runs:     up to {runs} at once, {together} (--parallel)")
    return LocalModel(backend, repack)


class _Progress:
    """While a long step runs, report its elapsed time each second, so a slow load is seen to be alive."""

    def __init__(self, label: str, say: Report) -> None:
        self.label, self.say = label, say
        self.done = threading.Event()

    def _tick(self) -> None:
        start = time.monotonic()
        while not self.done.wait(1.0):
            self.say.progress(f"{self.label} ... {time.monotonic() - start:.0f}s")

    def __enter__(self) -> _Progress:
        threading.Thread(target=self._tick, name="load-progress", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()


@dataclass
class Server:
    """An engine over its backend and code runner, and the ASGI app that serves it."""

    settings: Settings
    engine: Engine
    backend: ModelBackend
    owns_backend: bool  # opened here from the settings (closed with the server), or lent by the caller
    _closed: bool = field(default=False, repr=False)

    def app(self, *, api_key: str | None = None) -> Starlette:
        """The ASGI app (`api_key` overrides the settings' key, for tests of auth)."""
        from offline_assistants.api import create_app

        return create_app(self.engine, api_key=api_key)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.engine.close()  # the code runner with it
        if self.owns_backend:
            self.backend.close()


def build(settings: Settings, *, backend: ModelBackend | None = None, say: Report = QUIET) -> Server:
    """The server `settings` describe. The code runner comes first, so `--code-sandbox required` refuses before a
    model loads; `backend` lends one already loaded (a test session's shared model) instead of opening it."""
    from offline_assistants.engine import Engine

    settings.ensure_dirs()
    runner = open_code_runner(settings, say=say) if settings.code_interpreter else None
    owns = backend is None
    try:
        if backend is None:
            backend = open_model(settings, say=say)
        engine = Engine(settings, backend, code_runner=runner)
    except BaseException:
        if runner is not None:
            runner.close()
        if owns and backend is not None:
            backend.close()
        raise
    return Server(settings, engine, backend, owns_backend=owns)
