"""The direction of imports, checked over the real import graph (function-level
imports included, type-only imports under TYPE_CHECKING left out): data flows
request -> pipeline -> spool -> storage -> stats -> dashboard, and no part imports one
that it must not know. Shared leaves (errors, settings, schema, types, web helpers)
import no other part of the package."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "traceglider"

# part -> the parts it may import besides itself and the leaves
ALLOWED: dict[str, set[str]] = {
    "ingest": set(),
    "spool": {"storage"},
    "storage": set(),
    "stats": {"storage"},
    "dashboard": {"stats", "storage"},
}
# Modules every part may use; they import nothing of the package but other leaves.
LEAVES = {
    "traceglider", "traceglider.errors", "traceglider.config", "traceglider.schema", "traceglider.types",
    "traceglider.web", "traceglider.fsutil", "traceglider.memory", "traceglider.proc", "traceglider.sites",
    "traceglider.site_config", "traceglider.proxies", "traceglider.awsapi", "traceglider.progress",
    "traceglider.value_names", "traceglider.visits", "traceglider.ratelimit", "traceglider.settings_types",
    "traceglider.dates",
}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Import | ast.ImportFrom):
                        lines.add(sub.lineno)
    return lines


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        tree = ast.parse(path.read_text())
        skip = _type_only(tree)
        found: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)  # submodules
        graph[module] = {name for name in found if name.split(".")[0] == "traceglider"}
    return graph


def _known(name: str, graph: dict[str, set[str]]) -> str | None:
    """The package module `name` refers to (`from x import y` may name a function)."""
    while name and name not in graph:
        name = name.rpartition(".")[0]
    return name or None


def part_of(module: str) -> str | None:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[1] in ALLOWED else None


def test_the_import_graph_is_read_whole() -> None:
    graph = imports()
    assert "traceglider.ingest.routes" in graph and "traceglider.stats.engine" in graph
    # a function-level import is seen too
    assert any("traceglider.stats.engine" in targets for targets in graph.values())


def test_each_part_imports_only_what_it_may() -> None:
    graph = imports()
    wrong = []
    for module, targets in sorted(graph.items()):
        part = part_of(module)
        if part is None:
            continue  # entry points and wiring (app, cli, aws, ...) may import anything
        for name in sorted(targets):
            target = _known(name, graph)
            if target is None or target in LEAVES:
                continue
            other = part_of(target)
            if other != part and other not in ALLOWED[part]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_leaves_import_only_leaves() -> None:
    graph = imports()
    wrong = [f"{leaf} imports {target}" for leaf in sorted(LEAVES & graph.keys())
             for name in graph[leaf] if (target := _known(name, graph)) and target not in LEAVES]
    assert not wrong, "\n".join(wrong)
