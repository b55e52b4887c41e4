"""What crosses the socket between the server (llm/process.py) and its model process (llm/child.py): small frozen
dataclasses, pickled as they are, read with `match`.

    parent -> child   Start once, then Generate, Score, Cancel for requests, Stop at the end
    child -> parent   Ready or LoadError once, then per request any number of Generated and one Finished or
                      Failed; a Score gets Scored or Failed
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from offline_assistants.llm.backend import Finish, Piece, Sampling

DEFAULT_LOADER = "offline_assistants.llm.batch:BatchedLlama"


@dataclass(frozen=True)
class ChildSpec:
    """What the model process builds: `loader` ("module:callable", returning a llm/stepping.py SteppedModel)
    called with `options`. Tests name another loader (one that aborts, say) to put a misbehaving model behind
    the same supervisor."""

    options: dict[str, Any]
    loader: str = DEFAULT_LOADER
    sys_path: tuple[str, ...] = field(default_factory=lambda: tuple(sys.path))

    def replace(self, **options: Any) -> ChildSpec:
        return ChildSpec({**self.options, **options}, self.loader, self.sys_path)


# --- parent -> child ---
@dataclass(frozen=True)
class Start:
    spec: ChildSpec


@dataclass(frozen=True)
class Generate:
    req: int
    prompt: list[int]
    sampling: Sampling
    cache_key: str | None


@dataclass(frozen=True)
class Score:
    req: int
    prompt: list[int]
    options: list[list[int]]
    cache_key: str | None


@dataclass(frozen=True)
class Cancel:
    req: int


@dataclass(frozen=True)
class Stop:
    pass


Request = Generate | Score
ToChild = Start | Generate | Score | Cancel | Stop


# --- child -> parent ---
@dataclass(frozen=True)
class Ready:
    info: dict[str, Any]  # what the loaded model reports: n_ctx, gpu_layers, ...


@dataclass(frozen=True)
class LoadError:
    message: str


@dataclass(frozen=True)
class Generated:
    req: int
    piece: Piece


@dataclass(frozen=True)
class Finished:
    req: int
    finish: Finish


@dataclass(frozen=True)
class Scored:
    req: int
    scores: list[float]


@dataclass(frozen=True)
class Failed:
    req: int
    message: str


Reply = Generated | Finished | Scored | Failed


@dataclass(frozen=True)
class Replies:
    """What one step (or one submit) answered, sent at once: one pickle and one write per decode, not one per
    sequence's token."""

    items: tuple[Reply, ...]


FromChild = Ready | LoadError | Replies
