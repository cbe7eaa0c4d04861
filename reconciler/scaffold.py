"""`reconcile init`: a manifests repository with CI workflows, from templates in the package.

Writes nothing if any target exists (unless forced), so a half-scaffolded tree never
results from a refusal.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import __version__
from reconciler.errors import ReconcilerError
from reconciler.schema import SCHEMA_FILE, render_schema

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

DEFAULT_MAX_CELLS = 1_000_000
LEDGER = "applied-ledger.jsonl"


def _walk(node: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    out: list[tuple[str, Traversable]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        name = child.name.replace("dot-", ".", 1) if child.name.startswith("dot-") else child.name
        rel = f"{prefix}{name}"
        if child.is_dir():
            out.extend(_walk(child, rel + "/"))
        elif child.name != "__pycache__":
            out.append((rel, child))
    return out


def planned_files(max_cells: int = DEFAULT_MAX_CELLS) -> dict[str, str]:
    """Every file init writes, relative path -> content."""
    root = resources.files("reconciler") / "templates" / "init"
    files = {
        rel: src.read_text().replace("{{VERSION}}", __version__).replace("{{MAX_CELLS}}", str(max_cells))
        for rel, src in _walk(root)
    }
    files[f"schemas/{SCHEMA_FILE}"] = render_schema()
    files[LEDGER] = ""
    return files


def init(directory: Path, *, force: bool = False, max_cells: int = DEFAULT_MAX_CELLS) -> list[str]:
    files = planned_files(max_cells)
    existing = sorted(rel for rel in files if (directory / rel).exists())
    if existing and not force:
        raise ReconcilerError(
            f"{directory}: refusing to overwrite existing files (nothing was written; --force overwrites):\n"
            + "\n".join(f"  {rel}" for rel in existing)
        )
    for rel, content in files.items():
        if rel == LEDGER and (directory / rel).exists():
            continue  # never truncate a ledger, even with --force
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return sorted(files)
