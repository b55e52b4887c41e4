"""Built-in tool implementations (code_interpreter)."""

from __future__ import annotations

from offline_assistants.tools.code_interpreter import (
    CodeRunner,
    ExecutionResult,
    JupyterCodeRunner,
)

__all__ = ["CodeRunner", "ExecutionResult", "JupyterCodeRunner"]
