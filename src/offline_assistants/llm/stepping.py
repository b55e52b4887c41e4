"""What the model process (llm/child.py) drives: a `SteppedModel`. Requests are submitted as they arrive, and each
step() advances every one in flight (llm/batch.py's BatchedLlama: one batched decode). A model that can only
run one request to its end (the tests' stand-ins, tests/faulty_models.py) is served through `OneAtATime`, which
its loader wraps it in."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Protocol

from offline_assistants.llm.backend import Finish, Piece, Sampling, describe_error
from offline_assistants.llm.messages import Failed, Finished, Generate, Generated, Reply, Request, Score, Scored


class SteppedModel(Protocol):
    def info(self) -> dict[str, Any]:
        """What the parent learns once loaded (n_ctx, gpu_layers, ...)."""
        ...

    def warmup(self) -> None:
        """A first decode while loading, so that a build that crashes on it does so before a run needs it."""
        ...

    def busy(self) -> bool:
        """Whether a request is in flight (the model process blocks on its socket only when none is)."""
        ...

    def submit(self, request: Request) -> list[Reply]:
        """Admit a request; its replies come from step(), or at once when it is refused."""
        ...

    def cancel(self, req: int) -> None: ...

    def step(self) -> list[Reply]:
        """Advance every request in flight by one step; the replies that produced."""
        ...


class WholeRequestModel(Protocol):
    """A model whose generate() and score() each run one request to its end."""

    def info(self) -> dict[str, Any]: ...

    def generate(self, prompt: list[int], sampling: Sampling, *, cache_key: str | None = None,
                 cancelled: Callable[[], bool] = lambda: False) -> Iterator[Piece | Finish]: ...

    def score(self, prompt: list[int], options: list[list[int]], *, cache_key: str | None = None) -> list[float]: ...


class OneAtATime(SteppedModel):
    """A WholeRequestModel behind the step() interface: requests in the order they came, one item per step."""

    def __init__(self, model: WholeRequestModel) -> None:
        self.model = model
        self._queue: deque[Request] = deque()
        self._current: tuple[int, Iterator[Piece | Finish]] | None = None
        self._cancelled: set[int] = set()

    def info(self) -> dict[str, Any]:
        return self.model.info()

    def warmup(self) -> None:
        """Nothing to warm: these models are the tests' stand-ins."""

    def busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def submit(self, request: Request) -> list[Reply]:
        self._queue.append(request)
        return []

    def cancel(self, req: int) -> None:
        self._cancelled.add(req)

    def step(self) -> list[Reply]:
        if self._current is None:
            match self._queue.popleft():
                case Score(req, prompt, options, cache_key):
                    try:
                        return [Scored(req, self.model.score(prompt, options, cache_key=cache_key))]
                    except Exception as exc:  # noqa: BLE001 - one bad request must not end the process
                        return [Failed(req, describe_error(exc))]
                case Generate(req, prompt, sampling, cache_key):
                    items = self.model.generate(prompt, sampling, cache_key=cache_key,
                                                cancelled=partial(self._cancelled.__contains__, req))
                    self._current = (req, iter(items))
        assert self._current is not None
        req, items = self._current
        try:
            item = next(items, None)
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the process
            self._current = None
            return [Failed(req, describe_error(exc))]
        if isinstance(item, Piece):
            return [Generated(req, item)]
        self._current = None
        self._cancelled.discard(req)
        if isinstance(item, Finish):
            return [Finished(req, item)]
        return [Failed(req, "the model ended without finishing")]
