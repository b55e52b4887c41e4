"""The code interpreter: the model writes Python, the thread's own Jupyter kernel runs it, bounded and sandboxed.

- tool.py: the tool the engine calls (`CodeTool`): the fenced code the model writes, and what it reads back.
- runner.py: what the tool asks of a runner (`CodeRunner`) and what an execution returns (`ExecutionResult`).
- kernels.py: the Jupyter runner (`JupyterCodeRunner`): a kernel per session, started lazily, reaped when idle.
- execution.py: one execution on a kernel: its messages, the time limit (interrupt, then give up), outputs.
- limits.py: the launcher that sets a kernel's rlimits (memory, file size, processes) before ipykernel starts.
- workdir.py: a session's working directory: the files handed in, the files the code wrote.
- sandbox/: bubblewrap around each kernel (its layout, finding a bwrap that runs it, the process cap).
"""

from __future__ import annotations

from offline_assistants.tools.code_interpreter.kernels import JupyterCodeRunner
from offline_assistants.tools.code_interpreter.runner import CodeRunner, ExecutionResult
from offline_assistants.tools.code_interpreter.sandbox.detection import SandboxUnavailable
from offline_assistants.tools.code_interpreter.tool import CodeTool

__all__ = ["CodeRunner", "CodeTool", "ExecutionResult", "JupyterCodeRunner", "SandboxUnavailable"]
