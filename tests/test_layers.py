"""The layout is the architecture: no import cycle, and no layer imports one above it.

cli -> operations -> apply, plan/diff, planfile, gitsync, config -> ledger, enos,
manifests -> models, errors; render sits beside cli; emulator stands alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

# Who may not import whom: a module of the first group never imports one of the second.
LOWER = (
    "reconciler.ledger",
    "reconciler.enos",
    "reconciler.models",
    "reconciler.errors",
    "reconciler.manifests",
    "reconciler.yamlsource",
    "reconciler.diff",
    "reconciler.plan",
    "reconciler.planfile",
    "reconciler.words",
)
UPPER = (
    "reconciler.cli",
    "reconciler.operations",
    "reconciler.render",
    "reconciler.apply",
    "reconciler.gitsync",
    "reconciler.config",
    "reconciler.scaffold",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """Modules of the package this file imports when it runs (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reconciler"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # `from pkg import module`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("reconciler"))
    return found


def graph() -> dict[str, set[str]]:
    mods = {module_name(p): runtime_imports(p) for p in PACKAGE.rglob("*.py")}
    return {
        m: {d for d in deps if d in mods and d != m and not m.startswith(d + ".")} for m, deps in mods.items()
    }


def test_the_scanner_sees_imports_lazy_ones_included() -> None:
    g = graph()
    assert "reconciler.operations" in g["reconciler.cli.apply"]  # imported inside the command
    assert "reconciler.apply" in g["reconciler.operations"]
    assert "reconciler.enos" not in g["reconciler.apply"]  # only under TYPE_CHECKING


def test_no_import_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cycles.append([*path[path.index(d) :], d])
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_layer_imports_one_above_it() -> None:
    upward = [
        (m, d) for m, deps in graph().items() if m.startswith(LOWER) for d in deps if d.startswith(UPPER)
    ]
    assert upward == []


def test_the_emulator_stands_alone() -> None:
    outside = [
        (m, d)
        for m, deps in graph().items()
        if m.startswith("reconciler.emulator")
        for d in deps
        if not d.startswith("reconciler.emulator")
    ]
    assert outside == []
