"""The tools a run can use, plug-ins of one protocol (base.py): functions (the client runs them, functions.py), the
code interpreter (code.py, on a Jupyter kernel per thread, code_interpreter.py), and how call arguments follow
the request (arguments.py)."""

from __future__ import annotations

from offline_assistants.tools.code_interpreter import (
    CodeRunner,
    ExecutionResult,
    JupyterCodeRunner,
)

__all__ = ["CodeRunner", "ExecutionResult", "JupyterCodeRunner"]
