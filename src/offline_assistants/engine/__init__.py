"""The engine: the assistant / thread / message / run / run-step state machine, with no HTTP in it."""

from __future__ import annotations

from offline_assistants.engine.engine import Engine

__all__ = ["Engine"]
