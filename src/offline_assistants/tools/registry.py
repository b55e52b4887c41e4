"""The tools a server offers, one line each: adding a tool is its module and a line here.

Each entry makes a tool from what the server provides (`Services`), or None when the server cannot offer it
(no code runner: --no-code-interpreter). The engine offers a run the tools whose type it lists and the
registry made (engine/tooling.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from offline_assistants.tools.base import Tool
from offline_assistants.tools.code_interpreter import CodeRunner, CodeTool
from offline_assistants.tools.custom import CustomTool
from offline_assistants.tools.file_search import FileSearchTool, Search
from offline_assistants.tools.functions import FunctionTool


@dataclass(frozen=True)
class Services:
    """What tools may need from the server."""

    search: Search  # the run's vector stores (engine/search.py)
    code_runner: CodeRunner | None  # a Jupyter kernel per thread; None: no code interpreter


Factory = Callable[[Services], Tool | None]

REGISTRY: tuple[Factory, ...] = (
    lambda services: FunctionTool(),
    lambda services: FileSearchTool(services.search),
    lambda services: CodeTool(services.code_runner) if services.code_runner is not None else None,
    lambda services: CustomTool(),  # the Responses API's; the Assistants API has no such type
)


def build(services: Services, registry: Sequence[Factory] = REGISTRY) -> dict[str, Tool]:
    """The server's tools by their API type."""
    tools = [make(services) for make in registry]
    return {tool.type: tool for tool in tools if tool is not None}
