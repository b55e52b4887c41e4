"""The house rules CONTRIBUTING.md states, checked on the source: no import cycle between modules (imports inside
functions and under TYPE_CHECKING count), no module over 500 lines, no capability asked with getattr/hasattr, the
engine free of HTTP and llama.cpp, and SQL only in the store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "offline_assistants"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ours that `name` imports, wherever the import statement sits."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from package import module` names the module itself
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in targets if target in modules and target != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_checker_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_500_lines() -> None:
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# getattr/hasattr on an object the engine is handed (a backend, a decider, a tokenizer, a generator, a runner, a
# tool, a stream): a capability asked at run time instead of declared on the interface.
PROBE = re.compile(r"\b(getattr|hasattr)\(\s*(self\.)?\w*(backend|decider|tokenizer|generator|runner|tool|stream)\w*\b")


def test_capabilities_are_declared_not_probed() -> None:
    probes = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}" for path in _modules().values()
              for n, line in enumerate(path.read_text().splitlines(), 1) if PROBE.search(line)]
    assert probes == []


def test_the_engine_imports_neither_http_nor_llama_cpp() -> None:
    modules = _modules()
    engine = {name: path for name, path in modules.items() if name.startswith("offline_assistants.engine")}
    for name, path in engine.items():
        tree = ast.parse(path.read_text())
        roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        roots |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not roots & {"starlette", "uvicorn", "llama_cpp", "sqlite3", "sqlite_utils"}, name


SQL = re.compile(r"""["'](\s*)(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b""")


def test_sql_only_in_the_store() -> None:
    outside = [f"{path.relative_to(PACKAGE)}:{n}" for name, path in _modules().items()
               if not name.startswith("offline_assistants.store")
               for n, line in enumerate(path.read_text().splitlines(), 1) if SQL.search(line)]
    assert outside == []
