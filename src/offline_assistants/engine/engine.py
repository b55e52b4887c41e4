"""The engine: all state and every rule of the Assistants API, with no HTTP in sight.

It is built from a store, a model backend and (optionally) a code runner, the way an httpx Client sits on a
transport: tests hand it a scripted backend or a real one, the HTTP layer only translates to and from it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from offline_assistants.config import Settings
from offline_assistants.engine.assistants import Assistants
from offline_assistants.engine.containers import Containers
from offline_assistants.engine.control import RunControl
from offline_assistants.engine.conversations import Conversations
from offline_assistants.engine.embeddings import Embeddings
from offline_assistants.engine.events import EventBus
from offline_assistants.engine.executor import Executor
from offline_assistants.engine.files import Files
from offline_assistants.engine.indexer import Indexer
from offline_assistants.engine.lifecycle import Lifecycle
from offline_assistants.engine.model_calls import ModelCalls
from offline_assistants.engine.responses import Responses
from offline_assistants.engine.runs import Runs
from offline_assistants.engine.search import Searcher
from offline_assistants.engine.threads import Threads
from offline_assistants.engine.tooling import ToolCalling
from offline_assistants.engine.uploads import Uploads
from offline_assistants.engine.vector_stores import VectorStores
from offline_assistants.engine.worker import Worker
from offline_assistants.errors import ModelUnavailable
from offline_assistants.ids import now
from offline_assistants.llm.backend import ModelBackend, ModelError
from offline_assistants.retrieval.embeddings import Embedder, embedder_name
from offline_assistants.schemas.messages import MessageRole
from offline_assistants.schemas.runs import Run, RunStatus
from offline_assistants.store import Database, Store
from offline_assistants.store.recount import recount
from offline_assistants.tools import registry
from offline_assistants.tools.code_interpreter import CodeRunner
from offline_assistants.tools.registry import Services

log = logging.getLogger(__name__)


class Engine:
    def __init__(
        self,
        settings: Settings,
        backend: ModelBackend,
        *,
        code_runner: CodeRunner | None = None,
        store: Store | None = None,
        tool_registry: Sequence[registry.Factory] = registry.REGISTRY,
    ) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.backend = backend
        self.store = store or Store(Database(settings.database))
        self.bus = EventBus()
        self.code_runner = code_runner
        self.worker = Worker(self._execute, self._expire, concurrency=_concurrency(settings, backend))
        self.sampling_defaults = backend.sampling_defaults.override(settings.temperature, settings.top_p)
        self.files = Files(self.store, settings)
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self.indexer = Indexer(self.store, self.embedder)
        self.vector_stores = VectorStores(self.store, self.indexer, Searcher(self.store, self.embedder))
        self.embeddings = Embeddings(self.embedder, name=embedder_name(settings.embedding_model))
        self.assistants = Assistants(self.store, self.sampling_defaults, expand=self.vector_stores.expand)
        self.threads = Threads(self.store, self._encode, on_delete=self._thread_deleted,
                               expand=self.vector_stores.expand, attach=self.vector_stores.attach)
        self.uploads = Uploads(self.store, settings, self.files)
        self.containers = Containers(self.store, settings, self.files, code_runner)
        self.control = RunControl()
        self.lifecycle = Lifecycle(self.store, self.bus)
        self.runs = Runs(self.store, self.threads, self.bus, self.lifecycle, self.control, self.worker.submit,
                         expiry_s=settings.run_expiry_s, defaults=self.sampling_defaults,
                         max_queued=settings.max_queued_runs)
        self.model_calls = ModelCalls(backend, self.store, self.control,
                                      defaults=self.sampling_defaults, max_output_tokens=settings.max_output_tokens)
        tools = registry.build(Services(self.vector_stores.search_for_run, code_runner), tool_registry)
        tooling = ToolCalling(backend, self.store, self.lifecycle, self.model_calls, tools,
                              lambda data, name: self.files.create_output(data, name).id,
                              max_rounds=settings.max_tool_rounds, stores_for=self.vector_stores.for_run,
                              files_hold=self.vector_stores.evidence, decider=backend.decider,
                              cite_container_file=self.containers.cite)
        self.conversations = Conversations(self.store, self.threads, tooling.encode_item)
        self.responses = Responses(self.store, self.threads, self.runs, self.conversations, self.containers, self.files,
                                   n_ctx=backend.n_ctx, gives_logprobs=backend.gives_logprobs,
                                   count_system=tooling.system_tokens,
                                   encode_system=backend.encode_system, defaults=self.sampling_defaults)
        self.executor = Executor(self.store, self.lifecycle, self.control, self.bus, backend, self.model_calls,
                                 tooling, max_rounds=settings.max_tool_rounds)
        backend.attach(self._assistant_of)
        self._retokenize_if_needed()
        ended = self.lifecycle.recover()
        if ended:
            log.warning("ended %d run(s) left unfinished by a previous process", len(ended))
        self.worker.start()
        self.indexer.start()

    def _thread_deleted(self, thread_id: str) -> None:
        if self.code_runner is not None:
            self.code_runner.shutdown(thread_id, remove_files=True)

    def _assistant_of(self, thread_id: str) -> str | None:
        """The assistant of the thread's active run (a scripted model's assistant-scoped steps ask)."""
        active = self.store.runs.active(thread_id)
        return active["assistant_id"] if active is not None else None

    def _encode(self, role: MessageRole, text: str) -> list[int]:
        try:
            return self.backend.encode_message(role, text)
        except ModelError as exc:  # a remote server's tokenizer, unreachable: the message is not stored
            raise ModelUnavailable(f"The message could not be counted: {exc}") from exc

    def _execute(self, run_id: str) -> None:
        self.executor.execute(run_id)

    def _expire(self) -> None:
        ts = now()

        def route(run: Run) -> RunStatus | None:  # re-read under the write lock: of expiry and a submission,
            return "expired" if _expirable(run, ts) else None  # exactly one wins

        for candidate in self.store.runs.all_active():
            due = candidate["expires_at"] is not None and candidate["expires_at"] <= ts  # checked again in `route`
            if candidate["status"] in ("queued", "requires_action") and due:
                self.lifecycle.move(candidate["id"], route)
        self.containers.expire(ts)
        self.responses.sweep(ts)

    def _retokenize_if_needed(self) -> None:
        """Cached message tokens belong to one tokenizer; after a model change, count every message again."""
        recount(self.store.database, self._encode, self.backend.tokenizer_key)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker.idle():
                return True
            time.sleep(0.02)
        return False

    def embedder(self) -> Embedder:
        """The embedder of file search and /v1/embeddings, loaded on first use (most servers never index a file)."""
        with self._embedder_lock:
            if self._embedder is None:
                from offline_assistants.retrieval.embeddings import LlamaEmbedder, WordLlamaEmbedder

                path = self.settings.embedding_model
                self._embedder = LlamaEmbedder(path) if path is not None else WordLlamaEmbedder()
            return self._embedder

    def close(self) -> None:
        self.indexer.stop()
        self.worker.stop()
        if self.code_runner is not None:
            self.code_runner.close()
        self.store.close()


def _concurrency(settings: Settings, backend: ModelBackend) -> int:
    """How many runs execute at once: as many as asked where the backend serves generations in parallel (the
    local model decoding them in one batch, a remote server that batches: `parallel = True`), else one."""
    wanted = max(1, settings.max_concurrent_runs)
    if wanted > 1 and not backend.parallel:
        log.info("max_concurrent_runs=%d: %s generates one run at a time, so runs take turns", wanted, backend.name)
        return 1
    return wanted


def _expirable(run: Run, ts: int) -> bool:
    # An executing run watches its own expires_at (RunControl.must_stop); the sweep ends runs nothing executes.
    return run.status in ("queued", "requires_action") and run.expires_at is not None and run.expires_at <= ts
