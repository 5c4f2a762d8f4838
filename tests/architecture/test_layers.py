"""The layers of docs/architecture.md, kept by reading every import of the source tree.

Arrows point down only: a module may import its own package and the packages below it, never
what stands above it, and no two packages import each other. Imports inside functions and under
TYPE_CHECKING count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("bot", "handlers", "storage")

# Each unit (a package, or a top-level module of bot/) and what it may import besides itself.
# Listed top-down; a unit may only import units listed after it in its row.
ALLOWED: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "bot.cli": {"*"},
    "bot.__main__": {"bot.cli"},
    "bot.rehearsal": {"bot.app", "bot.services", "bot.worker", "bot.delivery", "bot.outbox",
                      "bot.messages", "bot.sandbox", "bot.simulator", "bot.clients",
                      "bot.config", "bot.engine", "bot.clock", "storage", "bot.errors",
                      "bot.rehearsal_recovery", "bot.runs", "bot.reports"},
    "bot.rehearsal_recovery": {"bot.services", "bot.simulator", "bot.config", "bot.engine",
                               "bot.dma"},
    "bot.app": {"*"},
    "handlers": {"bot.services", "bot.slack", "bot.messages", "bot.runs", "bot.engine",
                 "bot.config"},
    "bot.slack": {"bot.services", "bot.flows", "bot.runs", "bot.messages", "bot.outbox",
                  "bot.errors", "bot.config", "bot.engine", "bot.clock", "bot.dma",
                  "bot.metrics", "bot.logs"},
    "bot.services": {"bot.flows", "bot.runs", "bot.config", "bot.engine", "bot.clock",
                     "bot.dma"},
    "bot.flows": {"bot.runs", "bot.messages", "bot.reports", "bot.config", "bot.engine",
                  "bot.clock", "bot.dma", "storage", "bot.metrics", "bot.logs"},
    "bot.worker": {"bot.runs", "bot.config", "bot.engine", "bot.clock", "bot.dma", "storage",
                   "bot.metrics", "bot.logs"},
    "bot.runs": {"bot.messages", "bot.reports", "bot.outbox", "bot.config", "bot.engine",
                 "bot.clock", "bot.dma", "storage", "bot.metrics", "bot.logs"},
    "bot.delivery": {"bot.outbox", "bot.clock", "storage", "bot.metrics", "bot.logs"},
    "bot.outbox": set(),
    "bot.messages": {"bot.engine"},
    "bot.reports": {"bot.engine"},
    "bot.clients": {"bot.config", "bot.dma"},
    "bot.sandbox": {"bot.config", "bot.simulator", "bot.engine", "bot.clock"},
    "bot.errors": {"bot.engine", "bot.dma"},
    "bot.config": {"bot.engine"},
    "bot.simulator": {"bot.dma", "bot.engine", "bot.clock"},
    "storage": {"bot.engine", "bot.dma"},
    "bot.dma": {"bot.metrics"},
    "bot.engine": {"bot.dma"},  # only the pure DMA value types, bot.dma.models (see below)
    "bot.clock": set(),
    # Leaves every layer may use (but the pure engine): counting and logging import nothing.
    "bot.metrics": set(),
    "bot.logs": set(),
    "bot": set(),
}.items()}


def _modules() -> Iterator[tuple[str, Path]]:
    for top in PROJECT:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every project module this module imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def unit_of(module: str) -> str | None:
    """The unit a module belongs to: the longest ALLOWED key that prefixes it."""
    if module.split(".")[0] not in PROJECT:
        return None
    found = [u for u in ALLOWED if module == u or module.startswith(u + ".")]
    return max(found, key=len) if found else None


def _edges() -> set[tuple[str, str, str]]:
    """(importing unit, imported unit, importing module) for every cross-unit import."""
    edges = set()
    for name, path in _modules():
        here = unit_of(name)
        assert here is not None, f"{name} belongs to no layer: add it to ALLOWED"
        for imported in _imports(name, path):
            there = unit_of(imported)
            if there is not None and there != here and there != "bot":
                edges.add((here, there, name))
    return edges


EDGES = _edges()


def test_every_import_points_down() -> None:
    wrong = sorted(f"{module} ({here}) imports {there}" for here, there, module in EDGES
                   if "*" not in ALLOWED[here] and there not in ALLOWED[here])
    assert wrong == []


def test_the_engine_imports_only_itself_and_the_dma_value_types() -> None:
    engine = sorted({(m, there) for here, there, m in EDGES if here == "bot.engine"})
    for module, there in engine:
        assert there == "bot.dma", module
    imported = {i for name, path in _modules() if name.startswith("bot.engine")
                for i in _imports(name, path) if i.startswith("bot.dma")}
    assert imported <= {"bot.dma.models"} | {f"bot.dma.models.{n}" for n in _names("models")}


def _names(module: str) -> set[str]:
    tree = ast.parse((ROOT / "bot" / "dma" / f"{module}.py").read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)} | {
        t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
        if isinstance(t, ast.Name)}


def test_only_the_composition_root_imports_the_handlers() -> None:
    importers = sorted({here for here, there, _ in EDGES if there == "handlers"})
    assert importers == ["bot.app"]


def test_no_two_units_import_each_other() -> None:
    graph: dict[str, set[str]] = {}
    for here, there, _ in EDGES:
        graph.setdefault(here, set()).add(there)
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


@pytest.mark.parametrize("unit", ["storage", "bot.runs", "bot.flows", "bot.services"])
def test_lower_layers_never_reach_up_to_slack_or_the_worker(unit: str) -> None:
    above = {"bot.slack", "handlers", "bot.worker", "bot.app", "bot.cli"}
    if unit == "storage":
        above |= {"bot.services", "bot.flows", "bot.runs", "bot.messages", "bot.delivery"}
    reached = sorted({f"{m} -> {there}" for here, there, m in EDGES
                      if here == unit and there in above})
    assert reached == []
