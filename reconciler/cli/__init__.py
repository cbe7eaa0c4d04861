"""The `reconcile` command line: the flags, and nothing else.

Each command declares its flags as typer parameters, builds its arguments value from
them (`reconciler.args`, the same names) and hands it to its run in `reconciler.commands`,
which returns the exit code: 0 done or nothing to do, 1 error, 2 changes pending
(`plan --detailed-exitcode`), 130 interrupted. A new flag is a parameter here and a field
there.
"""

# isort: skip_file
# Commands are registered on import (`reconcile --help` lists them in `_app._LISTED` order).
from __future__ import annotations

from reconciler.cli import plan
from reconciler.cli import apply
from reconciler.cli import ledger
from reconciler.cli import tools
from reconciler.cli._app import app, main

__all__ = ["app", "apply", "ledger", "main", "plan", "tools"]
