"""Where a command runs from: `plan` run inside manifests/ plans from the directory that
holds reconcile.yaml (the nearest above, up to the git root), so the ledger and the
manifests are the repository's, not "everything pending" from a subdirectory."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.args import PlanArgs
    from reconciler.render.console import Consoles


def from_repository_root(c: Consoles, args: PlanArgs) -> PlanArgs:
    """Run from inside manifests/ (or any subdirectory), plan from where reconcile.yaml is:
    the nearest directory above holding one, up to the git root. Paths given relative to
    here are carried over, so `reconcile plan one.yaml` plans that file."""
    import os

    from reconciler.config import CONFIG_FILE

    here = Path.cwd()
    if args.config_file is not None or (here / CONFIG_FILE).is_file():
        return args
    root = next((d for d in up_to_git_root(here) if (d / CONFIG_FILE).is_file()), None)
    if root is None:
        return args

    def moved(p: str) -> str:
        return os.path.relpath(here / p, root)

    c.err.print(f"using {root / CONFIG_FILE}: planning from {root}", markup=False)
    os.chdir(root)
    return dataclasses.replace(
        args,
        paths=[moved(p) for p in args.paths] if args.paths else None,
        ledger=moved(args.ledger) if args.ledger else None,
    )


def up_to_git_root(start: Path) -> Iterator[Path]:
    """The parents of `start`, nearest first, ending at the first that holds `.git`."""
    for d in start.parents:
        yield d
        if (d / ".git").exists():
            return
